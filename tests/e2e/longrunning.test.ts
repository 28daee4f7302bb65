// A long-running managed job (a worker, an agent loop) proves life with its heartbeat file while
// it runs: it is never "missed" while it touches the file, it is when it falls silent, and a
// `rerun` rule restarts it without waiting for the new run to end (it never does). The run the
// heal started is then judged by the watchdog like any other.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeHome, query, startDaemon, waitFor, trackDaemons } from '../support/helpers.js';

const { daemons, dirs: homes } = trackDaemons({ dirs: 'after-all' });

// Writes its run id into w/hb every 200 ms. w/hang makes the next worker that sees it hang (alive,
// silent); w/die makes it exit 3. Each writes what it did into w/events.
const WORKER = `d=$1; id=run$NIGHTSHIFT_RUN_ID
while :; do
  if [ -e $d/hang ]; then rm -f $d/hang; echo "$id hang" >> $d/events; while :; do sleep 1; done; fi
  if [ -e $d/die ]; then rm -f $d/die; echo "$id die" >> $d/events; exit 3; fi
  echo "$id" >> $d/hb
  sleep 0.2
done
`;

// Read-only: passes when a heartbeat newer than its start arrives within 15 s (a slow machine
// starts a worker in well under that; a hung or dead one writes none at all).
const PROBE = `n=$(wc -l < $1)
for i in $(seq 300); do [ "$(wc -l < $1)" -gt "$n" ] && exit 0; sleep 0.05; done
exit 1
`;

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

describe('a long-running job with a heartbeat file', () => {
  it('is not missed while it heartbeats, is missed when it hangs, is rerun without waiting for its end, and its new run is judged by the watchdog', async () => {
    const home = makeHome({}, 'timezone: UTC\n');
    homes.push(home);
    const w = join(home, 'w');
    const hb = join(w, 'hb');
    mkdirSync(w);
    writeFileSync(join(home, 'worker.sh'), WORKER);
    writeFileSync(join(home, 'probe.sh'), PROBE);
    writeFileSync(
      join(home, 'jobs', 'worker.yaml'),
      `command: ["sh", "${join(home, 'worker.sh')}", "${w}"]\nevery: 1s\nconcurrency: forbid\ntimeout: 1h\nkillGrace: 1s\nheartbeat: { file: w/hb, grace: 5s }\n`,
    );
    writeFileSync(
      join(home, 'rules', 'restart.yaml'),
      `match: { job: worker, kind: [missed] }\nautonomy: auto\naction: { rerun: true }\nprobe:\n  command: ["sh", "${join(home, 'probe.sh')}", "${hb}"]\n  timeout: 30s\n`,
    );
    const state = join(home, 'state');
    daemons.push(await startDaemon(home));

    // Forty heartbeats are eight seconds at least: past its 1 s instant plus its 5 s grace.
    await waitFor(() => lines(hb).length >= 40, 60_000, 'forty heartbeats');
    expect(query(state, "SELECT kind, message FROM alerts WHERE job = 'worker'")).toEqual([]);
    // One heartbeat row per unbroken streak of touches, not one per touch; and its instants that
    // pass while it runs leave no skipped-overlap row each.
    expect(query<{ n: number }>(state, "SELECT count(*) AS n FROM heartbeats WHERE job = 'worker'")[0]!.n).toBe(1);
    expect(query(state, "SELECT id FROM runs WHERE job = 'worker' AND outcome = 'skipped-overlap'")).toEqual([]);
    const firstRun = lines(hb)[0]!;

    writeFileSync(join(w, 'hang'), '');
    await waitFor(() => lines(join(w, 'events')).includes(`${firstRun} hang`), 10_000, 'the worker hanging');
    const alert = await waitFor(
      () => query<{ id: number; kind: string }>(state, "SELECT id, kind FROM alerts WHERE job = 'worker'").at(0),
      30_000,
      'the missed alert',
    );
    expect(alert.kind).toBe('missed');
    const attempt = await waitFor(
      () =>
        query<{ outcome: string; detail: string }>(
          state,
          'SELECT outcome, detail FROM heal_attempts WHERE alert_id = ? AND outcome IS NOT NULL',
          alert.id,
        ).at(0),
      60_000,
      'the heal attempt',
    );
    expect(attempt.outcome, attempt.detail).toBe('fixed-verified');
    const runs = query<{ id: number; trigger: string; outcome: string | null }>(
      state,
      "SELECT id, trigger, outcome FROM runs WHERE job = 'worker' AND outcome IS NOT 'skipped-overlap' ORDER BY id",
    );
    expect(runs.find((r) => `run${r.id}` === firstRun)?.outcome).toBe('killed');
    const healRun = runs.find((r) => r.trigger === 'heal');
    expect(healRun?.outcome ?? null).toBeNull(); // still running: the heal did not wait for its end
    await waitFor(() => lines(hb).includes(`run${healRun!.id}`), 10_000, 'the rerun heartbeating');

    // The run the heal started is judged like any run: its failure is an incident of its own.
    writeFileSync(join(w, 'die'), '');
    const failed = await waitFor(
      () =>
        query<{ run_id: number; message: string }>(state, "SELECT run_id, message FROM alerts WHERE job = 'worker' AND kind = 'failed'").at(
          0,
        ),
      30_000,
      'the failed alert',
    );
    expect(failed.run_id).toBe(healRun!.id);
  }, 180_000);
});
