import type { Sql } from './sql.js';

/**
 * Which @reboot jobs this boot of the machine has had (the kernel's boot id). A row is written
 * before the run starts, so a daemon restarted later in the same boot does not run the job again;
 * and for a job added during a boot, so that it waits for the next one, as under cron.
 */
export class BootRuns {
  constructor(private readonly sql: Sql) {}

  /** Claims the job's turn in this boot: true once per (job, boot), false ever after. */
  claim(job: string, bootId: string, now: number, why: 'run' | 'added' | 'off'): boolean {
    return (
      this.sql.stmt('INSERT OR IGNORE INTO boot_runs (job, boot_id, at, why) VALUES (?, ?, ?, ?)').run(job, bootId, now, why).changes === 1
    );
  }

  /** Keeps the rows of this boot only: older boots are never asked about again. */
  forgetOtherBoots(bootId: string): number {
    return this.sql.stmt('DELETE FROM boot_runs WHERE boot_id != ?').run(bootId).changes;
  }
}
