// Puts a snapshot of a fix's touches back, as a process of its own inside a sandbox (the launcher's
// `restore` profile): it sees the file system as a job does, the state folder and the install
// read-only. A job running beside the rollback can swap a folder of the touches for a link while
// the rollback walks it; run here, the walk can then only reach what that job could reach itself
// — never the state folder, the protected zone or the install, which it finds read-only, so the
// rollback fails (and waits for a person) instead of writing there.
//
// argv: <snapshot folder> <manifest digest or "-">. Prints the RestoreResult as JSON on stdout;
// on failure the reason on stderr and exit 1.
import { restoreSnapshot } from './snapshot.js';

const [dir, digest] = process.argv.slice(2);
if (dir === undefined) {
  process.stderr.write('usage: restore-worker <snapshot folder> [<manifest digest>|-]\n');
  process.exit(2);
}
try {
  const result = await restoreSnapshot(dir, { expectDigest: digest === undefined || digest === '-' ? undefined : digest });
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
