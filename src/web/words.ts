// Placeholder until src/schedule/words.ts lands: the schedule as written.
import type { Job } from '../config/home.js';

export function scheduleInWords(job: Job): string {
  const s = job.spec as { schedule?: string; every?: unknown };
  if (s.schedule) return `cron "${s.schedule}", ${job.timezone}`;
  if (s.every !== undefined) return `every ${JSON.stringify(s.every)}`;
  return job.managed ? 'only when asked (no schedule)' : 'external: it pings';
}
