// `nightshift deny`: refuse a gated heal (nothing runs; the alert stays open)
import { type Command, answerHeal } from '../context.js';

export const denyCommand: Command = {
  summary: 'refuse a gated heal (nothing runs; the alert stays open)',
  usage: 'nightshift [--home DIR] deny HEAL-ID [--json]',
  help:
    'HEAL-ID is the heal attempt\'s ID as status and heals show it (H-4; "4" works too). An alert\'s ID (A-…) is\n' +
    'refused. Needs the daemon. ' +
    'An ID that does not exist, was answered already or has expired exits 2.',
  options: { json: { type: 'boolean' } },
  run: async (ctx) => answerHeal(ctx, 'deny'),
};
