// Fault suite: kill -9 of the daemon in the middle of runs, again and again, and what the next
// start makes of it — observed here, from the state database, the jobs' own evidence (written
// outside the state folder) and the machine's processes. README: "After a `kill -9`, runs left
// open become `interrupted` and their leftover processes are killed"; each instant gets one row,
// written before its process starts; a failed run is never without its alert; nothing is lost.
// Kills during a heal are tested in tests/e2e/heal.test.ts ("kill -9 of the daemon during a fix");
// bench/faults-kill9.mjs kills 200 times at random moments, heals and catch-up too, and prints
// the figures — this test does not use its verdicts.)
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunRow } from '../../src/store/store.js';
import { makeHome, pidAlive, query, startDaemon, waitFor, trackDaemons, type DaemonProc } from '../support/helpers.js';

const { daemons, dirs } = trackDaemons();
const WAIT_MS = 60_000;
const KILLS = 4;

/** Lines of a file the jobs append to ([] before the first). */
function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

describe('kill -9 of the daemon mid-run, again and again', () => {
  it(`${KILLS} SIGKILLs mid-run: every started run keeps its row, the runs cut short are interrupted, their children are reaped at the next start, no instant runs twice`, async () => {
    const home = makeHome();
    dirs.push(home);
    const evidence = join(home, 'evidence');
    const pidsFile = join(home, 'pids');
    // A run notes its start, forks two children that ignore SIGTERM (their real pids: the job sees
    // the machine's processes, so a dead daemon leaves them behind in its process group, for the
    // next start to kill), works for 2 s and notes its end.
    const script = join(home, 'worker.sh');
    writeFileSync(
      script,
      `echo "start $NIGHTSHIFT_RUN_ID" >> ${evidence}
for i in 1 2; do sh -c 'trap "" TERM; while :; do sleep 1; done' & echo "$NIGHTSHIFT_RUN_ID $!" >> ${pidsFile}; done
sleep 2
echo "end $NIGHTSHIFT_RUN_ID" >> ${evidence}
`,
    );
    writeFileSync(join(home, 'jobs', 'worker.yaml'), `every: 1s\nseeAllProcesses: true\nkillGrace: 1s\ncommand: ["sh", "${script}"]\n`);
    writeFileSync(join(home, 'jobs', 'quick.yaml'), 'every: 1s\ncommand: ["true"]\n');
    // Fails every time: each failure must be an occurrence of its alert, whenever the kills land.
    writeFileSync(join(home, 'jobs', 'broken.yaml'), 'every: 1s\ncommand: ["sh", "-c", "exit 3"]\n');
    const state = join(home, 'state');
    const runs = (): RunRow[] => query<RunRow>(state, 'SELECT * FROM runs ORDER BY id');
    const childrenOf = (runId: number): number[] =>
      lines(pidsFile)
        .map((l) => l.split(' ').map(Number))
        .filter(([r]) => r === runId)
        .map(([, pid]) => pid!);

    let d: DaemonProc = await startDaemon(home);
    daemons.push(d);
    try {
      for (let k = 0; k < KILLS; k++) {
        // Mid-run: a worker run has started (its row is open, its start noted) and forked both children.
        const victim = await waitFor(
          () =>
            runs().find(
              (r) => r.job === 'worker' && r.ended_at === null && childrenOf(r.id).length === 2 && !lines(evidence).includes(`end ${r.id}`),
            ),
          WAIT_MS,
          `a worker run in progress (kill ${k + 1})`,
        );
        const children = childrenOf(victim.id);
        d.proc.kill('SIGKILL');
        await d.proc;
        appendFileSync(join(home, 'kills'), `${victim.id}\n`);
        // The kill left the run's children behind: something must reap them.
        expect(children.filter(pidAlive), 'children outliving the killed daemon').toEqual(children);
        const open = runs().filter((r) => r.ended_at === null);
        expect(open.map((r) => r.id)).toContain(victim.id);
        const before = runs();
        const lastIdBefore = Math.max(...before.map((r) => r.id));

        d = await startDaemon(home);
        daemons.push(d);
        // Reaped by the new start, and the cut-short runs recorded as such.
        await waitFor(() => children.every((p) => !pidAlive(p)), WAIT_MS, 'the orphaned children killed');
        for (const o of open) {
          const row = query<RunRow>(state, 'SELECT * FROM runs WHERE id = ?', o.id)[0]!;
          expect(row.outcome, `run ${o.id}`).toBe('interrupted');
          expect(row.ended_at).not.toBeNull();
          expect(row.reason).toContain('nightshift stopped while this run was in progress');
        }
        // The new daemon goes on with new instants, each after every instant claimed before the kill.
        const after = (j: string): RunRow[] => runs().filter((r) => r.job === j && r.id > lastIdBefore && r.trigger === 'schedule');
        await waitFor(() => ['worker', 'quick'].every((j) => after(j).length > 0), WAIT_MS, 'instants claimed after the restart');
        // ...and the failing job fails twice in this life (its runs share the worker's instants, so
        // the kill would otherwise always land on one in progress).
        await waitFor(() => after('broken').filter((r) => r.outcome === 'failed').length >= 2, WAIT_MS, 'two failures of broken');
        for (const j of ['worker', 'quick']) {
          const lastBefore = Math.max(...before.filter((r) => r.job === j).map((r) => r.scheduled_for ?? 0));
          for (const r of after(j)) expect(r.scheduled_for, `${j} run ${r.id}`).toBeGreaterThan(lastBefore);
        }
      }
      await d.stop();

      const all = runs();
      // no row left open after a clean stop
      expect(all.filter((r) => r.ended_at === null)).toEqual([]);
      // No run started twice (that an instant has one row is the schema's unique index, not a finding).
      const starts = lines(evidence)
        .filter((l) => l.startsWith('start '))
        .map((l) => Number(l.slice(6)));
      expect(new Set(starts).size).toBe(starts.length);
      // no run lost: every process that started has its row, a scheduled worker run, ended either
      // by itself (its end noted), by the kill (interrupted) or by the clean stop (killed)
      const byId = new Map(all.map((r) => [r.id, r]));
      const ended = new Set(
        lines(evidence)
          .filter((l) => l.startsWith('end '))
          .map((l) => Number(l.slice(4))),
      );
      const victims = lines(join(home, 'kills')).map(Number);
      for (const id of starts) {
        const row = byId.get(id);
        expect(row, `run ${id} started but has no row`).toBeDefined();
        expect(row).toMatchObject({ job: 'worker', trigger: 'schedule' });
        expect(row!.scheduled_for).not.toBeNull();
        // A victim may have noted its end just before the kill: it is interrupted all the same.
        if (ended.has(id) && !victims.includes(id)) expect(row!.outcome, `run ${id}`).toBe('ok');
        else expect(['interrupted', 'killed'], `run ${id}`).toContain(row!.outcome);
      }
      // every failed run is an occurrence of its alert: none lost between the run's row and the alert's
      const failed = all.filter((r) => r.job === 'broken' && r.outcome === 'failed').length;
      expect(failed).toBeGreaterThanOrEqual(2 * KILLS);
      const occurrences = query<{ n: number }>(
        state,
        "SELECT coalesce(sum(count), 0) AS n FROM alerts WHERE fingerprint = 'broken:failed'",
      )[0]!.n;
      expect(occurrences).toBe(failed);
      // every kill hit a run, and each of those is interrupted
      expect(victims).toHaveLength(KILLS);
      for (const id of victims) expect(byId.get(id)?.outcome).toBe('interrupted');
      // and the children of every run, whichever way it ended, are gone
      const everyChild = lines(pidsFile).map((l) => Number(l.split(' ')[1]));
      expect(everyChild.length).toBeGreaterThanOrEqual(2 * KILLS);
      await waitFor(() => everyChild.every((p) => !pidAlive(p)), WAIT_MS, 'every child gone');
    } finally {
      // Whatever failed above: the children ignore SIGTERM and outlive a dead daemon.
      for (const l of lines(pidsFile)) {
        try {
          process.kill(Number(l.split(' ')[1]), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }, 300_000);
});
