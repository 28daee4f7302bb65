// `nightshift deny`: refuse a gated heal (nothing runs; the alert stays open)
import { type Command, answerHeal } from '../context.js';

export const denyCommand: Command = {
  summary: 'refuse a gated heal (nothing runs; the alert stays open)',
  usage: 'nightshift [--home DIR] deny ID [--json]',
  help: 'Needs the daemon. An ID that does not exist, was answered already or has expired exits 2.',
  options: { json: { type: 'boolean' } },
  run: async (ctx) => answerHeal(ctx, 'deny'),
};
