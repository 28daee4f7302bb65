// One rule for times in every surface a person reads: the job's zone, with its offset (or "UTC"),
// never a bare "00:26" nor a "…Z" beside a "+01:00". Two jobs in two zones (one with a half-hour
// offset, so no server zone can pass for it by chance), a failed run, its alert and the gated heal
// it asks a person for; then status, history, alerts and heals, read as a person reads them.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, makeHome, query, startDaemon, tempDir, trackDaemons, waitFor } from '../support/helpers.js';

const { daemons, dirs } = trackDaemons();
const WAIT_MS = 60_000;
const DAY = '\\d{4}-\\d\\d-\\d\\d';
/** An ISO time as the machine writes it ("2026-12-05T16:01:02.123Z"): never shown to a person. */
const ISO = /\d\dT\d\d:\d\d/;

describe('times', () => {
  it("status, history, alerts, heals and approvals show each job's times in its zone, with the offset", async () => {
    const work = tempDir('ns-times-work-');
    dirs.push(work);
    const home = makeHome({
      kolkata: 'schedule: "30 3 * * *"\ntimezone: Asia/Kolkata\ncommand: ["sh", "-c", "exit 1"]\n',
      utc: 'schedule: "30 3 * * *"\ntimezone: UTC\ncommand: ["true"]\n',
    });
    dirs.push(home);
    writeFileSync(
      join(home, 'rules', 'ask.yaml'),
      `match: { job: "kolkata" }\nautonomy: gated\naction: { command: ["touch", "${work}/ran"], touches: ["${work}"] }\nprobe: { command: ["test", "-e", "${work}/ran"] }\n`,
    );
    const d = await startDaemon(home);
    daemons.push(d);
    const ns = (...args: string[]) => cli(['--home', home, '--state', d.state, ...args]);
    await ns('run', 'kolkata');
    await ns('run', 'utc');
    const heal = await waitFor(
      () =>
        query<{ id: number; alert_id: number }>(d.state, "SELECT id, alert_id FROM heal_attempts WHERE outcome = 'awaiting-approval'")[0],
      WAIT_MS,
      'the approval request',
    );

    const status = (await ns('status')).stdout;
    expect(status).toMatch(new RegExp(`^kolkata .* ${DAY} 03:30 \\+05:30 \\(in `, 'm'));
    expect(status).toMatch(new RegExp(`^utc .* ${DAY} 03:30 UTC \\(in `, 'm'));
    expect(status).toMatch(new RegExp(`H-${heal.id} kolkata: .* \\(expires ${DAY} \\d\\d:\\d\\d \\+05:30, in `));
    expect(status).not.toMatch(ISO);

    const history = (await ns('history')).stdout;
    expect(history).toMatch(new RegExp(`^#\\d+ +kolkata +manual +${DAY} \\d\\d:\\d\\d:\\d\\d \\+05:30 `, 'm'));
    expect(history).toMatch(new RegExp(`^#\\d+ +utc +manual +${DAY} \\d\\d:\\d\\d:\\d\\d UTC `, 'm'));
    expect(history).not.toMatch(ISO);

    const alerts = (await ns('alerts')).stdout;
    expect(alerts).toMatch(new RegExp(`^A-${heal.alert_id} +kolkata +failed +1 +${DAY} \\d\\d:\\d\\d \\+05:30 `, 'm'));
    expect(alerts).not.toMatch(ISO);

    const heals = (await ns('heals', 'kolkata')).stdout;
    expect(heals).toMatch(new RegExp(`^H-${heal.id} kolkata:failed +awaiting-approval +${DAY} \\d\\d:\\d\\d \\+05:30 \\(`, 'm'));
    expect(heals).toContain(`for alert A-${heal.alert_id}`);
    expect(heals).toMatch(
      new RegExp(`answer: nightshift approve H-${heal.id} +or +nightshift deny H-${heal.id} +\\(expires ${DAY} \\d\\d:\\d\\d \\+05:30\\)`),
    );
    expect(heals).not.toMatch(ISO);

    // The answers to approve and deny speak the job's zone too.
    expect((await ns('deny', `H-${heal.id}`)).exitCode).toBe(0);
    const again = await ns('deny', `H-${heal.id}`);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(new RegExp(`heal H-${heal.id} was already denied at ${DAY} \\d\\d:\\d\\d \\+05:30; nothing more to do`));
  }, 120_000);
});
