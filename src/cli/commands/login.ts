// `nightshift login`: a one-time link that opens a dashboard session on the device that uses it
import { wallNow } from '../../clock.js';
import { isLoopbackListen } from '../../config/schema.js';
import { readableTime } from '../../schedule/instants.js';
import { systemTimeZone } from '../../schedule/timezone.js';
import { Store } from '../../store/store.js';
import { createLoginLink, LINK_TTL_MS } from '../../web/auth.js';
import { EXIT, UsageError, type Command, json, liveInfo, readHomeAsRun } from '../context.js';

export const loginCommand: Command = {
  summary: 'print a one-time link that logs a device in to the dashboard',
  usage: 'nightshift [--home DIR] login [--revoke-all] [--json]',
  help:
    `Prints a link to the dashboard that works once, for ${LINK_TTL_MS / 60_000} minutes. Opening it asks for a name for the device\n` +
    '("Kevin\'s phone"); only submitting that form uses the link, so a chat app\'s preview cannot spend it. The session\n' +
    'lasts 30 days after its last use. Buttons pressed there are journaled as "by web (NAME)".\n' +
    '--revoke-all ends every session and every link not yet used.\n' +
    'The link uses dashboard.publicUrl, or the listen address (policy.yaml). Needs the running daemon serving its\n' +
    'dashboard (exit 3 when it is not running, 1 when its port is not its own) and write access to the state folder.',
  options: { 'revoke-all': { type: 'boolean' }, json: { type: 'boolean' } },
  run: async (ctx) => {
    if (ctx.positionals.length) throw new UsageError(`unexpected argument "${ctx.positionals[0]}"`);
    const home = readHomeAsRun(ctx);
    const store = Store.open(ctx.paths.db);
    try {
      const now = wallNow();
      if (ctx.values['revoke-all']) {
        const r = store.web.revokeAll(now);
        store.journal.record(
          now,
          'web-revoke-all',
          null,
          `every dashboard session ended (${r.sessions} session(s), ${r.links} unused link(s))`,
          r,
        );
        ctx.io.out(ctx.values.json ? json(r) : `ended ${r.sessions} dashboard session(s) and ${r.links} unused login link(s)`);
        return EXIT.ok;
      }
      const d = home.policy.dashboard;
      if (d.listen === 'off')
        throw new UsageError('the dashboard is off (dashboard.listen: off in protected/policy.yaml); set a listen address to use it');
      // A link is given only while the daemon itself holds the dashboard's port: otherwise whatever
      // listens there (a job that took the port) would receive the link and could spend it.
      const live = await liveInfo(ctx);
      if (!live) {
        ctx.io.err(
          'nightshift login: the daemon is not running, so nothing of nightshift answers a link: start it first (systemctl start nightshift)',
        );
        return EXIT.unreachable;
      }
      const served = live.dashboard;
      if (!served?.listening) {
        ctx.io.err(
          `nightshift login: the daemon does not serve its dashboard on ${d.listen} now (nightshift's log and the journal say why: is the port taken?); no link was made`,
        );
        return EXIT.unhealthy;
      }
      // The link must point where the daemon itself listens, not where a policy not yet applied says.
      if (served.listen !== d.listen || (served.publicUrl ?? undefined) !== d.publicUrl) {
        ctx.io.err(
          `nightshift login: the daemon serves the dashboard at ${served.publicUrl ?? served.listen}, but policy.yaml says ${d.publicUrl ?? d.listen} (a change not applied yet, or an invalid policy: nightshift validate); no link was made`,
        );
        return EXIT.unhealthy;
      }
      const link = createLoginLink(store, home.policy, now);
      if (ctx.values.json) {
        ctx.io.out(json({ url: link.url, expiresAt: link.expiresAt }));
        return EXIT.ok;
      }
      const tz = home.policy.timezone ?? systemTimeZone();
      ctx.io.out(`Open this link on the device to log in (it works once, until ${readableTime(link.expiresAt, tz)}):\n\n  ${link.url}\n`);
      if (!d.publicUrl && isLoopbackListen(d.listen))
        ctx.io.out(
          `The dashboard listens on ${d.listen}, this machine only. From a laptop: ssh -L ${d.listen.replace(/^.*:/, '')}:${d.listen} THIS-SERVER, then open the link there; for a phone, put a reverse proxy with https in front and set dashboard.publicUrl (deploy/README.md).`,
        );
      return EXIT.ok;
    } finally {
      store.close();
    }
  },
};
