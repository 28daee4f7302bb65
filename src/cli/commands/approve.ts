// `nightshift approve`: let a gated heal run its fix (ID from status or heals)
import { type Command, answerHeal } from '../context.js';

export const approveCommand: Command = {
  summary: 'let a gated heal run its fix (ID from status or heals)',
  usage: 'nightshift [--home DIR] approve HEAL-ID [--json]',
  help:
    'HEAL-ID is the heal attempt\'s ID as status and heals show it (H-4; "4" works too). An alert\'s ID (A-…) is refused.\n' +
    'Needs the daemon. The attempt continues from the guard step: snapshot, fix, probe, verdict.\nAn ID that does not exist, was answered already or has expired (after 24 h) exits 2.',
  options: { json: { type: 'boolean' } },
  run: async (ctx) => answerHeal(ctx, 'approve'),
};
