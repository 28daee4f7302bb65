// `nightshift ping-url`: the address an external job pings over HTTP, with its secret key
import { EXIT, type Command, json, jobName, act } from '../context.js';

export const pingUrlCommand: Command = {
  summary: "print an external job's HTTP ping address (with its secret key)",
  usage: 'nightshift [--home DIR] ping-url JOB [--rotate] [--json]',
  help:
    'Prints the address an external job (one with no command) pings to prove life, from this or another host:\n' +
    '  curl -fsS -m 10 --retry 3 URL            success\n' +
    '  curl -fsS -m 10 --retry 3 URL/start      it started (a later success records the duration)\n' +
    '  curl -fsS -m 10 --retry 3 URL/fail       it failed (or URL/N with its exit status N: 0 is a success)\n' +
    "GET or POST; a POSTed body (up to 10 KB; the rest is cut) is kept as the ping's output and shown by\n" +
    "nightshift history JOB and on the job's dashboard page. The key is made on the first call and the same\n" +
    'address is printed every time after; --rotate makes a new key, and the old address stops working at once\n' +
    '(journaled as ping-key-rotated). Anyone with the address can ping as the job, nothing more.\n' +
    'The address is dashboard.publicUrl, else http:// and dashboard.listen (protected/policy.yaml): pings are\n' +
    'served by the dashboard. With the dashboard off, only the path is printed and the exit code is 2.\n' +
    'Needs the daemon (exit 3 when it is not running). A job nightshift runs itself has no key (exit 2): its\n' +
    'successful runs are its heartbeats.',
  options: { rotate: { type: 'boolean' }, json: { type: 'boolean' } },
  run: async (ctx) => {
    const name = jobName(ctx)!;
    const r = await act(ctx, 'POST', `/ping-url/${name}${ctx.values.rotate ? '/rotate' : ''}`);
    if (r.status !== 200) {
      ctx.io.err(`nightshift ping-url: ${String(r.body.error)}`);
      return r.status === 404 || r.status === 400 ? EXIT.usage : EXIT.unhealthy;
    }
    const url = typeof r.body.url === 'string' ? r.body.url : null;
    const dash = (r.body.dashboard ?? {}) as { listening?: boolean; listen?: string | null };
    if (ctx.values.json) ctx.io.out(json(r.body));
    else ctx.io.out(url ?? String(r.body.path));
    if (r.body.rotated) ctx.io.err(`nightshift ping-url: ${name} has a new key; the old address answers "not found" from now on`);
    if (url === null) {
      ctx.io.err(
        'nightshift ping-url: the dashboard is off (dashboard.listen: off in protected/policy.yaml), so nothing answers ' +
          'pings over HTTP; above is only the path. Set dashboard.listen (e.g. 127.0.0.1:8787, and publicUrl behind a ' +
          `reverse proxy) to serve them, then run nightshift ping-url ${name} again for the full address. Meanwhile: nightshift ping ${name}`,
      );
      return EXIT.usage;
    }
    if (!dash.listening)
      ctx.io.err(
        `nightshift ping-url: note: the daemon does not serve its dashboard${dash.listen ? ` on ${dash.listen}` : ''} now (nightshift's log and the journal say why: is the port taken?); pings to this address fail until it does`,
      );
    return EXIT.ok;
  },
};
