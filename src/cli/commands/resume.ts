// `nightshift resume`: restart scheduling a paused job (or --all); its clock starts afresh
import { type Command, pauseResume } from '../context.js';

export const resumeCommand: Command = {
  summary: 'restart scheduling a paused job (or --all); its clock starts afresh',
  usage: 'nightshift [--home DIR] resume JOB|--all',
  help: 'Needs the daemon. Instants that passed while paused are not caught up.',
  options: { all: { type: 'boolean' } },
  run: async (ctx) => pauseResume(ctx, 'resume'),
};
