// Which files a heal's fix changed, created or removed: recorded with the attempt from the snapshot
// manifest against the tree right after the fix (before the probe), kept when the attempt is rolled
// back, and shown by `nightshift heals` (text and --json). A real daemon, real rules and fixes.
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { cli, makeHome, query, startDaemon, tempDir, trackDaemons, tree, waitFor, type DaemonProc } from '../support/helpers.js';

const WAIT_MS = 30_000;
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const { daemons, dirs } = trackDaemons();

interface Attempt {
  id: number;
  outcome: string | null;
  attempt: number | null;
  files: string | null;
}

function home(jobs: Record<string, string>, rules: Record<string, string>): string {
  const h = makeHome(jobs);
  dirs.push(h);
  for (const [name, text] of Object.entries(rules)) writeFileSync(join(h, 'rules', `${name}.yaml`), text);
  return h;
}
async function daemon(h: string): Promise<DaemonProc> {
  const d = await startDaemon(h);
  daemons.push(d);
  return d;
}
const ns = (d: DaemonProc, ...args: string[]) => cli(['--home', d.home, '--state', d.state, ...args]);
const attempts = (d: DaemonProc): Attempt[] => query<Attempt>(d.state, 'SELECT id, outcome, attempt, files FROM heal_attempts ORDER BY id');

/** A folder with a.txt (the fix changes it) and c.txt (the fix removes it). */
function workTree(prefix: string): string {
  const w = realpathSync(tempDir(prefix));
  dirs.push(w);
  writeFileSync(join(w, 'a.txt'), 'before\n');
  writeFileSync(join(w, 'c.txt'), 'to be removed\n');
  writeFileSync(join(w, 'same.txt'), 'left alone\n');
  return w;
}

describe('the files a fix changed, created or removed', () => {
  it('a verified fix: the attempt records one changed, one created and one removed file; heals shows them', async () => {
    const w = workTree('ns-heal-files-');
    const h = home(
      { sync: 'command: ["sh", "-c", "echo upstream refused; exit 3"]\n' },
      {
        'fix-sync': `match: { job: sync, kind: [failed] }\nautonomy: auto\naction:\n  command: ["sh", "-c", "cd ${w} && echo after > a.txt && echo new > b.txt && rm c.txt"]\n  touches: ["${w}/"]\nprobe: { command: ["test", "-e", "${w}/b.txt"] }\n`,
      },
    );
    const d = await daemon(h);
    await ns(d, 'run', 'sync');
    const a = await waitFor(() => attempts(d).find((x) => x.outcome !== null), WAIT_MS, 'the heal');
    expect(a.outcome).toBe('fixed-verified');
    const files = {
      changed: [join(w, 'a.txt')],
      created: [join(w, 'b.txt')],
      removed: [join(w, 'c.txt')],
      counts: { changed: 1, created: 1, removed: 1 },
    };
    expect(JSON.parse(a.files!)).toEqual(files);
    expect(readFileSync(join(w, 'a.txt'), 'utf8')).toBe('after\n');

    const text = await ns(d, 'heals');
    expect(text.stdout).toContain(`    files: changed ${w}/a.txt; created ${w}/b.txt; removed ${w}/c.txt\n`);
    const js = JSON.parse((await ns(d, 'heals', '--json')).stdout) as { attempts: Array<{ id: number; files: unknown }> };
    expect(js.attempts).toEqual([expect.objectContaining({ id: a.id, files })]);
  });

  it('a fix that is rolled back keeps its record, says "rolled back", and shows a hostile file name as text', async () => {
    const w = workTree('ns-heal-files-back-');
    const before = tree(w);
    const h = home(
      { sync: 'command: ["sh", "-c", "echo upstream refused; exit 3"]\n' },
      {
        // The created file's name carries an escape sequence (clear the screen): data from a fix.
        'fix-sync': `match: { job: sync, kind: [failed] }\nautonomy: auto\naction:\n  command: ["sh", "-c", "cd ${w} && echo after > a.txt && touch \\"$(printf 'x\\\\033[2Jy')\\" && rm c.txt"]\n  touches: ["${w}/"]\nprobe: { command: ["sh", "-c", "exit 1"] }\n`,
      },
    );
    const d = await daemon(h);
    await ns(d, 'run', 'sync');
    const a = await waitFor(() => attempts(d).find((x) => x.outcome !== null && x.attempt === 1), WAIT_MS, 'the heal');
    expect(a.outcome).toBe('rolled-back');
    // the tree is as it was; the record says what the fix had done
    expect(tree(w)).toEqual(before);
    expect(existsSync(join(w, 'c.txt'))).toBe(true);
    expect(JSON.parse(a.files!)).toEqual({
      changed: [join(w, 'a.txt')],
      created: [join(w, 'x\u001b[2Jy')],
      removed: [join(w, 'c.txt')],
      counts: { changed: 1, created: 1, removed: 1 },
    });

    const text = (await ns(d, 'heals')).stdout;
    expect(text).toContain(`    files (rolled back): changed ${w}/a.txt; created ${w}/x\u241b[2Jy; removed ${w}/c.txt\n`);
    expect(text).not.toContain('\u001b');
  });
});
