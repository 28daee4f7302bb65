// `nightshift approve`: let a gated heal run its fix (ID from status or heals)
import { type Command, answerHeal } from '../context.js';

export const approveCommand: Command = {
  summary: 'let a gated heal run its fix (ID from status or heals)',
  usage: 'nightshift [--home DIR] approve ID [--json]',
  help: 'Needs the daemon. The attempt continues from the guard step: snapshot, fix, probe, verdict.\nAn ID that does not exist, was answered already or has expired (after 24 h) exits 2.',
  options: { json: { type: 'boolean' } },
  run: async (ctx) => answerHeal(ctx, 'approve'),
};
