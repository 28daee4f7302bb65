// Fault suite: kill -9 of the daemon at random moments across runs and heals — the short form of
// bench/faults-kill9.mjs (same scenario, same checks, fewer kills; the bench prints the full
// figures for 200). A real daemon, real jobs that write their own evidence outside the state
// folder, a real heal rule whose fix changes a tree; SQLite and the files are compared after each
// restart and at the end.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/helpers.js';

interface Problem {
  when?: string;
  what?: string;
}

interface Kill9Result {
  command: string;
  kills: number;
  aimedKills: number;
  killsDuringRun: number;
  killsDuringHeal: number;
  killsDuringChangingHeal: number;
  interruptedRuns: number;
  treeChecks: { pre: number; post: number; mix: number };
  runs: number;
  evidenceStarts: number;
  heals: number;
  healOutcomes: Array<{ outcome: string | null; n: number }>;
  errorLines: string[];
  problems: { lost: Problem[]; double: Problem[]; mixed: Problem[]; unalerted: Problem[]; leftovers: Problem[]; notFinal: Problem[] };
}

type RunKill9 = (opts: { kills: number; seed: number; log?: (m: string) => void }) => Promise<Kill9Result>;

const KILLS = 15;
const SEED = 5_0509;

describe('kill -9 across runs and heals', () => {
  it(`${KILLS} SIGKILLs at random moments: no lost row, no double run of an instant, no half-applied fix, no failed run without its alert`, async () => {
    const mod = (await import(pathToFileURL(join(ROOT, 'bench', 'faults-kill9.mjs')).href)) as { runKill9: RunKill9 };
    const res = await mod.runKill9({ kills: KILLS, seed: SEED });
    const why = `reproduce with: ${res.command}`;

    // the kills really hit what they are meant to test
    expect(res.kills, why).toBe(KILLS);
    expect(res.killsDuringRun, why).toBeGreaterThan(0);
    expect(res.interruptedRuns, why).toBeGreaterThan(0);
    expect(res.killsDuringChangingHeal, why).toBeGreaterThan(0);
    expect(res.evidenceStarts, why).toBeGreaterThan(0);
    expect(res.healOutcomes.find((o) => o.outcome === 'fixed-verified')?.n ?? 0, why).toBeGreaterThan(0);
    expect(res.healOutcomes.find((o) => o.outcome === 'interrupted-rolled-back')?.n ?? 0, why).toBeGreaterThan(0);
    expect(res.treeChecks.pre + res.treeChecks.post, why).toBeGreaterThan(KILLS);

    // and nothing was lost, doubled or half-done
    expect(res.problems.lost, why).toEqual([]);
    expect(res.problems.notFinal, why).toEqual([]);
    expect(res.problems.double, why).toEqual([]);
    expect(res.problems.mixed, why).toEqual([]);
    expect(res.treeChecks.mix, why).toBe(0);
    expect(res.problems.unalerted, why).toEqual([]);
    expect(res.problems.leftovers, why).toEqual([]);
    // nothing the daemon logged as an error, apart from the restart loop the kills make
    expect(res.errorLines, why).toEqual([]);
  }, 240_000);
});
