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
    const w = new ConfigWatcher({ paths: [dir], onChange: (f) => seen.push(readFileSync(f, 'utf8')), onError: (e) => errors.push(e) });
    await w.start();
    try {
      // chokidar drops a change of a path that comes within 50 ms of the one it last reported; the
      // second write of each round comes right after the report of the first (25 ms after that
      // change, the debounce), so on all but a very slow machine it falls in that window.
      for (let i = 1; i <= 10; i++) {
        const before = seen.length;
        writeFileSync(file, `v: ${i}\n`);
        await waitFor(() => seen.length > before, WAIT_MS, `the first write of round ${i}`);
        writeFileSync(file, `v: ${i} again\n`);
        await waitFor(() => seen.at(-1) === `v: ${i} again\n`, WAIT_MS, `the second write of round ${i} (seen: ${JSON.stringify(seen)})`);
      }
      expect(errors).toEqual([]);
    } finally {
      await w.stop();
      cleanup(dir);
    }
  }, 120_000);
});
