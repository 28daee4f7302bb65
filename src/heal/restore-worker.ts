// nightshift's own hands after a fix, as a process of their own inside a sandbox (the launcher's
// `restore` profile): it sees the file system as a job does, the state folder and the install
// read-only. A job running beside it can swap a folder of the touches for a link while this walks
// it; run here, the walk can then only reach what that job could reach itself — never the state
// folder, the protected zone or the install, which it finds read-only, so it fails (and the
// attempt waits for a person) instead of writing there.
//
//   restore-worker restore <snapshot folder> <manifest digest or "-">
//       puts the snapshot back; prints the RestoreResult as JSON
//   restore-worker tidy      (a TidyOrder as JSON on stdin)
//       removes what a fix left beside its touched files and the empty folders made for it;
//       prints {count, first} of the paths it removed as strays, as JSON
//   restore-worker files <snapshot folder> <manifest digest or "-">   (folders made for the fix, a JSON array, on stdin)
//       reads only: what changed under the snapshot's roots since it was taken; prints the
//       FileChanges as JSON in ASCII (the daemon reads it in chunks: no character is cut in two)
// On failure: the reason on stderr, exit 1.
import { readFileSync } from 'node:fs';
import { tidy, type TidyOrder } from '../run/launch.js';
import { restoreSnapshot, snapshotChanges } from './snapshot.js';
import { errorMessage } from '../errors.js';

const STRAYS_NAMED = 20;
const [op, dir, digest] = process.argv.slice(2);
try {
  if (op === 'restore' && dir !== undefined) {
    const result = await restoreSnapshot(dir, { expectDigest: digest === undefined || digest === '-' ? undefined : digest });
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else if (op === 'files' && dir !== undefined) {
    const made = JSON.parse(readFileSync(0, 'utf8') || '[]') as string[];
    const changes = await snapshotChanges(dir, {
      expectDigest: digest === undefined || digest === '-' ? undefined : digest,
      madeForFix: made,
    });
    const ascii = JSON.stringify(changes).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    process.stdout.write(`${ascii}\n`);
  } else if (op === 'tidy') {
    const order = JSON.parse(readFileSync(0, 'utf8')) as TidyOrder;
    const strays = tidy(order);
    // The daemon reads a few KiB of this: the first names and how many there were.
    process.stdout.write(`${JSON.stringify({ count: strays.length, first: strays.slice(0, STRAYS_NAMED) })}\n`);
  } else {
    process.stderr.write(
      'usage: restore-worker restore <snapshot folder> [<manifest digest>|-] | restore-worker tidy < order.json | restore-worker files <snapshot folder> [<manifest digest>|-] < made.json\n',
    );
    process.exit(2);
  }
} catch (err) {
  process.stderr.write(`${errorMessage(err)}\n`);
  process.exit(1);
}
