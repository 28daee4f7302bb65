// The spec watcher with real files and a real chokidar watcher: every write is seen, and the last
// one is what is reported.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigWatcher } from '../../../src/config/watch.js';
import { cleanup, tempDir, waitFor } from '../../support/helpers.js';

// How long a test waits for a report is no claim about speed.
const WAIT_MS = 30_000;

describe('ConfigWatcher', () => {
  it('a file written again at once after its change was reported is reported again, with its last content', async () => {
    const dir = tempDir('ns-watch-');
    const file = join(dir, 'beat.yaml');
    writeFileSync(file, 'v: 0\n');
    const seen: string[] = [];
    const errors: Error[] = [];
    // chokidar drops a change of a path that comes within 50 ms of the one it last reported. The
    // second write of each round is made inside the report of the first — 25 ms (the debounce)
    // after chokidar's change — so it falls in that window on any machine, however slow.
    let round = 0;
    const w = new ConfigWatcher({
      paths: [dir],
      onChange: (f) => {
        const text = readFileSync(f, 'utf8');
        seen.push(text);
        if (text === `v: ${round}\n`) writeFileSync(file, `v: ${round} again\n`);
      },
      onError: (e) => errors.push(e),
    });
    await w.start();
    try {
      for (round = 1; round <= 10; round++) {
        writeFileSync(file, `v: ${round}\n`);
        await waitFor(
          () => seen.at(-1) === `v: ${round} again\n`,
          WAIT_MS,
          `the second write of round ${round} (seen: ${JSON.stringify(seen)})`,
        );
        expect(seen).toContain(`v: ${round}\n`);
      }
      expect(errors).toEqual([]);
    } finally {
      await w.stop();
      cleanup(dir);
    }
  }, 120_000);
});
