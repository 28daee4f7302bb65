// How an attempt's files record reads in `heals` (and wherever filesLine is used).
import { describe, expect, it } from 'vitest';
import { filesLine } from '../../../src/report/healview.js';

const none = { changed: 0, created: 0, removed: 0 };

describe('filesLine', () => {
  it('names each kind that happened, says "rolled back" once undone, and nothing when no record was kept', () => {
    const files = { changed: ['/w/a'], created: ['/w/b', '/w/b/c'], removed: ['/w/d'], counts: { changed: 1, created: 2, removed: 1 } };
    expect(filesLine(files, 'fixed-verified')).toBe('files: changed /w/a; created /w/b, /w/b/c; removed /w/d');
    expect(filesLine(files, null)).toBe('files: changed /w/a; created /w/b, /w/b/c; removed /w/d');
    for (const undone of ['rolled-back', 'interrupted-rolled-back', 'halted'])
      expect(filesLine(files, undone)).toMatch(/^files \(rolled back\): changed \/w\/a;/);
    expect(filesLine(files, 'rollback-failed')).toMatch(/^files \(the rollback failed\): /);
    expect(filesLine({ changed: [], created: [], removed: [], counts: none }, 'fixed-verified')).toBe(
      'files: none changed, created or removed',
    );
    expect(filesLine(null, 'fixed-verified')).toBeNull();
    expect(filesLine({ error: 'the files could not be listed: timeout' }, 'rolled-back')).toBe(
      'files (rolled back): not listed: the files could not be listed: timeout',
    );
  });

  it('shows ten paths of a kind and counts the rest, also those the record did not name', () => {
    const created = Array.from({ length: 200 }, (_, i) => `/w/f${i}`);
    const line = filesLine({ changed: [], created, removed: [], counts: { ...none, created: 5000 } }, 'fixed-verified')!;
    expect(line).toBe(`files: created ${created.slice(0, 10).join(', ')}, … 4990 more`);
    // a list left empty by the character cap still says how many there were
    expect(filesLine({ changed: [], created: [], removed: [], counts: { ...none, removed: 3 } }, null)).toBe('files: removed … 3 more');
  });

  it("paths are a fix's data: control characters shown, never a line of their own", () => {
    const line = filesLine({ changed: [], created: ['/w/x\u001b[2J\ny\u202e'], removed: [], counts: { ...none, created: 1 } }, null)!;
    for (const c of ['\u001b', '\n', '\u202e']) expect(line).not.toContain(c);
    expect(line).toBe('files: created /w/x\u241b[2J ⏎ y\ufffd');
  });
});
