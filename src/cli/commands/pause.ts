// `nightshift pause`: stop scheduling a job (or --all); its instants are recorded as skipped-paused
import { type Command, pauseResume } from '../context.js';

export const pauseCommand: Command = {
  summary: 'stop scheduling a job (or --all); its instants are recorded as skipped-paused',
  usage: 'nightshift [--home DIR] pause JOB|--all',
  help: 'Needs the daemon. A running process is not stopped. Pending retries are dropped.',
  options: { all: { type: 'boolean' } },
  run: async (ctx) => pauseResume(ctx, 'pause'),
};
