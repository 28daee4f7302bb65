// The dashboard's pages, rendered on the server as plain HTML: they read without JavaScript, and
// every button is a form that posts back with the session's CSRF token. What a page says comes
// from the same code as the CLI and the digest (summarize, verdictOf, healViews, readRunOutput,
// readableTime): the dashboard has no rules of its own about health or time.
import type { Job, LoadedRule } from '../config/home.js';
import type { HomePaths } from '../config/paths.js';
import type { Policy } from '../config/schema.js';
import type { KillState } from '../control/killswitch.js';
import { refOf } from '../model.js';
import { digestDate, summarize, summaryFacts, verdictOf, type ConfigState, type JobRow } from '../report/digest.js';
import { filesLine, healLines, healViews, type HealView } from '../report/healview.js';
import { readRunOutput } from '../report/output.js';
import { ago } from '../report/status.js';
import { containment } from '../run/launch.js';
import { nextInstants, readableTime } from '../schedule/instants.js';
import { systemTimeZone } from '../schedule/timezone.js';
import { healTone, runTone } from '../report/tones.js';
import type { AlertRow, RunDot, RunRow, Store, WebSessionRow } from '../store/store.js';
import { CHART_RUNS, chartModel, chartSvg } from './chart.js';
import { html, type Html } from './html.js';

export interface PageData {
  store: Store;
  paths: HomePaths;
  now: number;
  jobs: Map<string, Job>;
  rules: Map<string, LoadedRule>;
  policy: Policy;
  kill: KillState;
  config: ConfigState;
}

export interface Chrome {
  title: string;
  session: WebSessionRow | null;
  flash?: { text: string; error: boolean } | null;
  /** What the open page follows live: "all", "job:NAME" (that job's pages); null or absent: nothing. */
  live?: string | null;
}

const DAY_MS = 24 * 3600_000;
export const STRIP_RUNS = 30;
const JOB_PAGE_RUNS = 50;

/** A time as every surface says it (the job's zone), with how far away it is. */
export function when(ms: number, tz: string, now: number): Html {
  return html`<time datetime="${new Date(ms).toISOString()}">${ago(now - ms)}</time> <span class="muted">(${readableTime(ms, tz)})</span>`;
}

const csrfField = (s: WebSessionRow | null): Html => html`<input type="hidden" name="csrf" value="${s?.csrf ?? ''}" />`;

/** A button that posts to `action`; `back` is where the answer is shown. */
export function button(s: WebSessionRow | null, action: string, label: string, back: string, cls = ''): Html {
  return html`<form method="post" action="${action}">
    ${csrfField(s)}<input type="hidden" name="back" value="${back}" /><button type="submit" class="${cls}">${label}</button>
  </form>`;
}

export function layout(c: Chrome, body: Html): string {
  const nav = c.session
    ? html`<nav aria-label="Pages">
        <a href="/">Overview</a><a href="/alerts">Alerts</a><a href="/heals">Heals</a><a href="/digests">Digests</a
        ><a href="/devices">Devices</a>
      </nav>`
    : '';
  const flash = c.flash ? html`<p class="flash${c.flash.error ? ' error' : ''}" role="status">${c.flash.text}</p>` : '';
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="same-origin" />
        <title>${c.title} · nightshift</title>
        <link rel="stylesheet" href="/style.css" />
        ${c.live && c.session ? html`<script src="/live.js" defer></script>` : ''}
      </head>
      <body${c.live && c.session ? html` data-live="${c.live}"` : ''}>
        <header class="top"><span class="brand">nightshift</span>${nav}</header>
        <main>${flash}<div id="live">${body}</div></main>
      </body>
    </html>`.text;
}

// ---- overview ----

function zoneOf(d: PageData, job: string): string {
  return d.jobs.get(job)?.timezone ?? d.policy.timezone ?? systemTimeZone();
}

export function overviewPage(d: PageData, c: Chrome): string {
  const { store, now } = d;
  const tz = d.policy.timezone ?? systemTimeZone();
  const window = { from: now - DAY_MS, to: now };
  // The verdict is the digest's (summarize, verdictOf) over the facts that hold now; a window of
  // runs is not read: nothing of the summary comes from it, and it is most of a year's history's cost.
  const summary = summarize({
    facts: summaryFacts(store),
    jobs: d.jobs,
    policy: d.policy,
    kill: d.kill,
    date: digestDate(tz, now),
    window,
    now,
    heals: healLines(store, window.from, window.to),
    config: d.config,
  });
  const verdict = verdictOf(summary, d.kill, containment());
  const bad = summary.needs.length > 0 || d.kill.halted;
  const approvals = store.heals.pendingApprovals();
  const open = store.alerts.open();
  const s = c.session;
  // Each job's strip: one indexed walk per job that stops after STRIP_RUNS rows, no output read.
  const strips = store.runs.outcomesOfEach(
    summary.jobs.filter((j) => !j.external).map((j) => j.name),
    STRIP_RUNS,
  );
  const cells = new Map<string | null, Html>();
  return layout(
    c,
    html`<h1>Overview</h1>
      <p class="verdict${bad ? ' bad' : ''}" id="verdict">${verdict}</p>
      ${d.kill.halted ? killSection(d, s, '/') : ''}
      ${
        summary.needs.length
          ? html`<h2>Needs you</h2>
              <ul>
                ${summary.needs.map((n) => html`<li>${n.lines.map((l, i) => (i === 0 ? html`${l.text}` : html`<br /><span class="muted">${l.text}</span>`))}</li>`)}
              </ul>`
          : ''
      }
      <h2 id="approvals">Approvals waiting (${approvals.length})</h2>
      ${approvals.length ? approvals.map((a) => approvalCard(d, a, s)) : html`<p class="muted">None.</p>`}
      <h2 id="alerts">Open alerts (${open.length})</h2>
      ${
        open.length
          ? html`<ul class="plain">
              ${open.map((a) => alertItem(d, a))}
            </ul>`
          : html`<p class="muted">None.</p>`
      }
      <h2 id="jobs">Jobs (${summary.jobs.length})</h2>
      ${
        summary.jobs.length
          ? html`<ul class="plain">
              ${summary.jobs.map((j) => jobItem(d, j, strips.get(j.name) ?? [], cells))}
            </ul>`
          : html`<p class="muted">No jobs yet: add a file to jobs/.</p>`
      }
      ${
        d.kill.halted
          ? ''
          : html`<h2 id="kill">Kill switch</h2>
              ${killSection(d, s, '/')}`
      }
      <footer>Shown at ${readableTime(now, tz)}. Reload for what changed since.</footer>`,
  );
}

function killSection(d: PageData, s: WebSessionRow | null, back: string): Html {
  if (d.kill.switchOn)
    return html`<div class="card">
      <p class="kill-on">
        Kill switch is ON${d.kill.since !== null ? html` since ${readableTime(d.kill.since, d.policy.timezone ?? systemTimeZone())}` : ''}:
        fixes and agent jobs are halted.
      </p>
      <div class="actions"><a class="btnlink" href="/kill/off">Turn the kill switch off…</a></div>
    </div>`;
  return html`<div class="card">
    <p>Kill switch is off${d.kill.halted ? html`, but autonomous actions are stopped: ${d.kill.reason}` : ''}.</p>
    <div class="actions">${button(s, '/kill/on', 'Kill switch on: stop every fix and agent job', back, 'danger')}</div>
  </div>`;
}

function approvalCard(d: PageData, a: HealView | ReturnType<Store['heals']['pendingApprovals']>[number], s: WebSessionRow | null): Html {
  const ref = refOf('heal', a.id);
  const alert = d.store.alerts.get(a.alert_id);
  const rule = a.rule ? d.rules.get(a.rule) : undefined;
  const touches = rule?.rule.action.touches ?? [];
  const tz = zoneOf(d, a.job);
  return html`<section class="card approval" id="${ref}" aria-label="Approval ${ref}">
    <h3>${ref} · ${a.job}: rule ${a.rule ?? '?'}</h3>
    <dl class="facts">
      <dt>Alert</dt>
      <dd>${alert ? html`${refOf('alert', alert.id)} ${alert.kind}: ${alert.message}` : refOf('alert', a.alert_id)}</dd>
      <dt>The fix runs</dt>
      <dd>${a.action ?? '?'}</dd>
      <dt>It may change</dt>
      <dd>${touches.length ? touches.join(', ') : 'no files'}</dd>
      ${
        a.expires_at !== null
          ? html`<dt>Answer by</dt>
              <dd>${when(a.expires_at, tz, d.now)}</dd>`
          : ''
      }
    </dl>
    <div class="actions">
      ${button(s, `/heals/${a.id}/approve`, 'Approve', `/#${ref}`)}${button(s, `/heals/${a.id}/deny`, 'Deny', `/#${ref}`, 'secondary')}
    </div>
  </section>`;
}

function alertItem(d: PageData, a: AlertRow): Html {
  const tz = zoneOf(d, a.job);
  return html`<li id="${refOf('alert', a.id)}">
    <strong>${refOf('alert', a.id)}</strong> <a href="/jobs/${encodeURIComponent(a.job)}">${a.job}</a> ·
    ${a.kind}${a.count > 1 ? ` (${a.count} times)` : ''} <br />${a.message}<br /><span class="muted"
      >opened
      ${when(a.opened_at, tz, d.now)}${a.resolved_at !== null ? html` · ended ${when(a.resolved_at, tz, d.now)}: ${a.resolution ?? ''}` : ''}</span
    >
  </li>`;
}

/**
 * A job's last runs as a row of coloured cells, oldest first, each titled with its outcome. A cell
 * is the same markup for every run of one outcome, so each is made once per page (an overview of
 * 100 jobs has 3,000 of them).
 */
function strip(runs: RunDot[], cells = new Map<string | null, Html>()): Html {
  const list = [...runs].reverse();
  const counts = new Map<string, number>();
  for (const r of list) counts.set(r.outcome ?? 'running', (counts.get(r.outcome ?? 'running') ?? 0) + 1);
  const label = list.length ? `last ${list.length} runs: ${[...counts].map(([o, n]) => `${n} ${o}`).join(', ')}` : 'no runs yet';
  const cell = (outcome: string | null): Html => {
    let c = cells.get(outcome);
    if (!c) cells.set(outcome, (c = html`<span class="${runTone(outcome)}" title="${outcome ?? 'running'}"></span>`));
    return c;
  };
  return html`<div class="strip" role="img" aria-label="${label}">${list.map((r) => cell(r.outcome))}</div>`;
}

function jobItem(d: PageData, j: JobRow, runs: RunDot[], cells: Map<string | null, Html>): Html {
  const tz = zoneOf(d, j.name);
  const last = j.lastRun
    ? html`${j.external ? 'last ping' : 'last run'} ${when(j.lastRun.at, tz, d.now)}${j.external ? '' : html`: ${j.lastRun.outcome}`}`
    : j.external
      ? 'no ping yet'
      : 'not run yet';
  const next = j.nextRun !== null ? html`${j.external ? 'ping expected by' : 'next'} ${when(j.nextRun, tz, d.now)}` : '';
  return html`<li class="job">
    <a href="/jobs/${encodeURIComponent(j.name)}"><strong>${j.name}</strong></a> <span class="state ${j.health}">${j.state}</span>
    <br /><span class="muted">${last}${next ? html` · ${next}` : ''}</span>${j.external ? '' : strip(runs, cells)}
  </li>`;
}

// ---- a job ----

export function jobPage(d: PageData, c: Chrome, name: string, describe: (job: Job) => string): string | null {
  const job = d.jobs.get(name);
  if (!job) return null;
  const s = c.session;
  const st = d.store.jobStates.get(name);
  const paused = st?.paused === 1;
  const tz = job.timezone;
  const next = job.schedule && job.spec.enabled && !paused ? nextInstants(job.schedule, d.now, 5) : [];
  const runs = d.store.runs.history(name, JOB_PAGE_RUNS);
  const charted = d.store.runs.recent(name, CHART_RUNS);
  const chart = chartModel(charted, { now: d.now, timeoutMs: job.spec.timeout, tz });
  const back = `/jobs/${encodeURIComponent(name)}`;
  const buttons = [
    job.managed ? button(s, `${back}/run`, 'Run now', back) : '',
    paused ? button(s, `${back}/resume`, 'Resume', back) : button(s, `${back}/pause`, 'Pause', back, 'secondary'),
  ];
  return layout(
    c,
    html`<h1>${name}</h1>
      <dl class="facts">
        <dt>Schedule</dt>
        <dd>${describe(job)}</dd>
        <dt>State</dt>
        <dd>
          ${!job.spec.enabled ? 'turned off in its file' : paused ? 'paused' : job.managed ? 'on' : 'external: something else runs it and pings'}
        </dd>
        <dt>File</dt>
        <dd>${job.file}</dd>
      </dl>
      <div class="actions">${buttons}</div>
      <h2>Next runs</h2>
      ${
        next.length
          ? html`<ol>
              ${next.map((t) => html`<li>${when(t, tz, d.now)}</li>`)}
            </ol>`
          : html`<p class="muted">
              ${paused ? 'None while it is paused.' : !job.spec.enabled ? 'None: it is turned off.' : 'None scheduled.'}
            </p>`
      }
      ${job.managed ? '' : pingsSection(d, name, tz)}
      <h2>Runs</h2>
      ${charted.length ? chartSvg(chart, tz) : ''}
      ${
        runs.length
          ? html`<ul class="plain">
              ${runs.map((r) => runItem(d, name, r, tz))}
            </ul>`
          : html`<p class="muted">No runs yet.</p>`
      }`,
  );
}

// ---- an external job's pings ----

const JOB_PAGE_PINGS = 50;
const PING_WORDS = { success: 'ok', fail: 'fail', start: 'start' } as const;

/** What an external job sent: its last pings, each with what it POSTed (outside text, shown as text). */
function pingsSection(d: PageData, name: string, tz: string): Html {
  const pings = d.store.heartbeats.recent(JOB_PAGE_PINGS, { job: name });
  return html`<h2>Pings</h2>
    ${
      pings.length
        ? html`<ul class="plain" id="pings">
            ${pings.map(
              (p) =>
                html`<li id="ping-${p.id}">
                  <span class="tone-${p.kind === 'fail' ? 'bad' : p.kind === 'start' ? 'running' : 'ok'}">${PING_WORDS[p.kind]}</span> ·
                  ${p.source === 'file' ? 'heartbeat file' : p.source === 'http' ? 'over http' : 'nightshift ping'} ·
                  ${when(p.at, tz, d.now)}${p.duration_ms !== null ? ` · ran ${seconds(p.duration_ms)}` : ''}
                  ${p.output ? html`<pre>${p.output}</pre>` : ''}
                </li>`,
            )}
          </ul>`
        : html`<p class="muted">No pings yet: nightshift ping-url ${name} prints its address.</p>`
    }`;
}

function runItem(d: PageData, job: string, r: RunRow, tz: string): Html {
  const outcome = r.outcome ?? 'running';
  const href = `/jobs/${encodeURIComponent(job)}/runs/${r.id}`;
  return html`<li id="run-${r.id}">
    <a href="${href}"><strong>#${r.id}</strong></a> <span class="outcome-${outcome} tone-${runTone(r.outcome)}">${outcome}</span> ·
    ${r.trigger} · started
    ${r.started_at !== null ? when(r.started_at, tz, d.now) : 'not started'}${r.duration_ms !== null ? ` · ${seconds(r.duration_ms)}` : ''}
    ${r.reason ? html`<br />${r.reason}` : ''}
    ${
      r.output_tail
        ? html`<details id="out-${r.id}">
            <summary>End of its output</summary>
            <pre>${r.output_tail}</pre>
            <a href="${href}">All of its output</a>
          </details>`
        : ''
    }
  </li>`;
}

const seconds = (ms: number): string => (ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);

/** One run with its output as stored: the log's head and tail (capped), or the tail kept with the run. */
export function runPage(d: PageData, c: Chrome, job: string, id: number): string | null {
  const r = d.store.runs.get(id);
  if (!r || r.job !== job) return null;
  const tz = zoneOf(d, job);
  const out = r.ended_at !== null ? readRunOutput(r, d.paths.logs) : null;
  return layout(
    c,
    html`<h1>${job} · run #${r.id}</h1>
      <dl class="facts">
        <dt>Outcome</dt>
        <dd>
          <span class="outcome-${r.outcome ?? 'running'} tone-${runTone(r.outcome)}">${r.outcome ?? 'running'}</span
          >${r.exit_code !== null ? ` (exit code ${r.exit_code})` : ''}${r.signal ? ` (signal ${r.signal})` : ''}
        </dd>
        ${
          r.reason
            ? html`<dt>Why</dt>
                <dd>${r.reason}</dd>`
            : ''
        }
        <dt>Started by</dt>
        <dd>${r.trigger}</dd>
        <dt>Started</dt>
        <dd>${r.started_at !== null ? when(r.started_at, tz, d.now) : 'not started'}</dd>
        ${
          r.duration_ms !== null
            ? html`<dt>Took</dt>
                <dd>${seconds(r.duration_ms)}</dd>`
            : ''
        }
      </dl>
      <h2>Output</h2>
      ${out?.note ? html`<p class="muted">${out.note}</p>` : ''}
      ${out ? html`<pre id="output">${out.output ?? '(none)'}</pre>` : html`<p class="muted">The run is under way.</p>`}
      <p><a href="/jobs/${encodeURIComponent(job)}">Back to ${job}</a></p>`,
  );
}

// ---- alerts and heals ----

export function alertsPage(d: PageData, c: Chrome): string {
  const rows = d.store.alerts.recent(200);
  const open = rows.filter((a) => a.resolved_at === null);
  const ended = rows.filter((a) => a.resolved_at !== null);
  return layout(
    c,
    html`<h1>Alerts</h1>
      <h2>Open (${open.length})</h2>
      ${
        open.length
          ? html`<ul class="plain">
              ${open.map((a) => alertItem(d, a))}
            </ul>`
          : html`<p class="muted">None.</p>`
      }
      <h2>Ended (${ended.length})</h2>
      ${
        ended.length
          ? html`<ul class="plain">
              ${ended.map((a) => alertItem(d, a))}
            </ul>`
          : html`<p class="muted">None.</p>`
      }`,
  );
}

export function healsPage(d: PageData, c: Chrome): string {
  const views = healViews(d.store, 100);
  return layout(
    c,
    html`<h1>Heals</h1>
      ${
        views.length
          ? html`<ul class="plain">
              ${views.map((v) => healItem(d, v, c.session))}
            </ul>`
          : html`<p class="muted">No heal attempts yet.</p>`
      }`,
  );
}

function healItem(d: PageData, v: HealView, s: WebSessionRow | null): Html {
  const tz = zoneOf(d, v.job);
  const ref = refOf('heal', v.id);
  const outcome = v.outcome ?? 'in progress';
  const waiting = v.outcome === 'awaiting-approval';
  return html`<li id="${ref}" class="heal">
    <strong>${ref}</strong> <a href="/jobs/${encodeURIComponent(v.job)}">${v.job}</a> · rule ${v.rule ?? '—'} · level ${v.autonomy ?? '—'} ·
    <span class="outcome-${outcome} tone-${healTone(v.outcome)}">${outcome}</span> <br /><span class="muted"
      >alert ${refOf('alert', v.alert_id)} · began
      ${when(v.created_at, tz, d.now)}${v.answer ? ` · ${v.answer} by ${v.answered_by ?? 'an operator'}` : ''}</span
    >
    ${v.action ? html`<br />fix: ${v.action}` : ''}${v.detail ? html`<br />${v.detail}` : ''}
    <ol class="steps">
      ${v.steps.map((st) => html`<li>${st.step}${st.result ? `: ${st.result}` : ''} <span class="muted">(${readableTime(st.started_at, tz, true)}${st.ended_at !== null ? `, ${st.ended_at - st.started_at} ms` : ''})</span>${st.detail ? html`<br /><span class="muted">${st.detail}</span>` : ''}</li>`)}
    </ol>
    ${filesOf(v)}
    ${waiting ? html`<div class="actions">${button(s, `/heals/${v.id}/approve`, 'Approve', `/heals#${ref}`)}${button(s, `/heals/${v.id}/deny`, 'Deny', `/heals#${ref}`, 'secondary')}</div>` : ''}
  </li>`;
}

/** The files the fix changed, created or removed, from the snapshot manifest (the words of `heals`). */
function filesOf(v: HealView): Html {
  const line = filesLine(v.files, v.outcome);
  return line ? html`<p class="files">${line}</p>` : html``;
}

// ---- login and small pages ----

export function loginPage(token: string, problem: string | null, csrfless: Chrome): string {
  if (problem)
    return layout(
      csrfless,
      html`<h1>Log in</h1>
        <p class="flash error" role="alert">${problem}</p>`,
    );
  return layout(
    csrfless,
    html`<h1>Log in to nightshift</h1>
      <p>
        Name this device, so the journal says who pressed what (for example “Kevin's phone”). The session lasts 30 days after its last use.
      </p>
      <form method="post" action="/login/${token}">
        <label for="label">This device</label>
        <input type="text" id="label" name="label" maxlength="60" required autocomplete="off" placeholder="Kevin's phone" />
        <div class="actions"><button type="submit">Log in</button></div>
      </form>`,
  );
}

export function notLoggedInPage(c: Chrome): string {
  return layout(
    c,
    html`<h1>Not logged in</h1>
      <p>On the server, run <code>nightshift login</code> and open the link it prints on this device (it works once, for 10 minutes).</p>`,
  );
}

export function killOffPage(d: PageData, c: Chrome): string {
  return layout(
    c,
    html`<h1>Turn the kill switch off?</h1>
      <p>
        While it is on, no fix runs and agent jobs are halted. Turning it off lets the heal loop act on open alerts
        again${d.kill.since !== null ? html` (it has been on since ${readableTime(d.kill.since, d.policy.timezone ?? systemTimeZone())})` : ''}.
      </p>
      <form method="post" action="/kill/off">
        ${csrfField(c.session)}<input type="hidden" name="confirm" value="yes" /><input type="hidden" name="back" value="/" />
        <div class="actions"><button type="submit" class="danger">Yes, turn it off</button><a class="btnlink" href="/">Cancel</a></div>
      </form>`,
  );
}

export function messagePage(c: Chrome, heading: string, text: string): string {
  return layout(
    c,
    html`<h1>${heading}</h1>
      <p>${text}</p>
      <p><a href="/">Overview</a></p>`,
  );
}

// ---- the digest archive ----

/** Digests the archive lists: a year and a bit (retention keeps 365 days by default). */
const ARCHIVE_DIGESTS = 400;

function delivery(r: { sent_at: number | null; attempts: number; last_error: string | null }, tz: string, now: number): Html {
  if (r.sent_at !== null) return html`sent ${when(r.sent_at, tz, now)}`;
  if (r.last_error !== null) return html`not sent after ${r.attempts} ${r.attempts === 1 ? 'attempt' : 'attempts'}: ${r.last_error}`;
  return html`not e-mailed`;
}

export function digestsPage(d: PageData, c: Chrome): string {
  const tz = d.policy.timezone ?? systemTimeZone();
  const rows = d.store.digests.list(ARCHIVE_DIGESTS);
  return layout(
    c,
    html`<h1>Digests</h1>
      ${
        rows.length
          ? html`<ul class="plain" id="digests">
              ${rows.map(
                (r) =>
                  html`<li>
                    <a href="/digests/${r.date}"><strong>${r.date}</strong></a> · ${r.verdict}<br /><span class="muted"
                      >${delivery(r, tz, d.now)}</span
                    >
                  </li>`,
              )}
            </ul>`
          : html`<p class="muted">No digest yet: the first is written at ${d.policy.digest.at} (${tz}).</p>`
      }`,
  );
}

/** A verdict of verdictOf that is not an all-clear: something needed a person, or the kill switch or containment was said. */
const digestWasBad = (verdict: string): boolean => !verdict.startsWith('Nothing needs you') || verdict.includes(';');

/**
 * One stored digest, as its plain text: exactly what the e-mail's text part and digests/DATE.md
 * say. Its stored HTML is not shown: the page could not prove that the HTML in the database is
 * what our renderer wrote (anything that can write the state folder can write that column), and
 * HTML is never put into a page raw. Re-rendering it would not do either: it would show today's
 * rows, not what was sent that day. The text goes through `html` like any other text (escaped).
 */
export function digestPage(d: PageData, c: Chrome, date: string): string | null {
  const r = d.store.digests.get(date);
  if (!r) return null;
  const tz = d.policy.timezone ?? systemTimeZone();
  return layout(
    c,
    html`<h1>Digest of ${r.date}</h1>
      <p class="verdict${digestWasBad(r.verdict) ? ' bad' : ''}">${r.verdict}</p>
      <dl class="facts">
        <dt>Written</dt>
        <dd>${when(r.created_at, tz, d.now)}</dd>
        <dt>E-mail</dt>
        <dd>${delivery(r, tz, d.now)}</dd>
      </dl>
      <pre id="digest-text">${r.body_text}</pre>
      <p><a href="/digests">All digests</a></p>`,
  );
}
