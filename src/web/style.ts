// The dashboard's one stylesheet, served as /style.css (the Content-Security-Policy allows no
// inline style). Phone first: one column, tap targets of at least 44 px, the system's dark mode.
// The colours of runs (--ok, --bad, --warn, --info for running, --idle) are report/tones.ts's, the
// ones the digest e-mail uses too.
import { TONE_COLOURS } from '../report/tones.js';

const L = TONE_COLOURS.light;
const D = TONE_COLOURS.dark;

export const STYLE = `
:root { color-scheme: light dark; --bg: #fff; --fg: #1a1a1a; --muted: #595959; --line: #d0d0d0; --card: #f6f6f6;
  --ok: ${L.ok}; --bad: ${L.bad}; --warn: ${L.warn}; --info: ${L.running}; --idle: ${L.idle}; --btn: #0b57d0; --btnfg: #fff; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #121212; --fg: #ececec; --muted: #b0b0b0; --line: #3a3a3a; --card: #1e1e1e;
    --ok: ${D.ok}; --bad: ${D.bad}; --warn: ${D.warn}; --info: ${D.running}; --idle: ${D.idle}; --btn: #7cacf8; --btnfg: #0d0d0d; }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 60rem; margin: 0 auto; padding: 0 1rem 3rem; }
header.top { display: flex; flex-wrap: wrap; gap: .25rem 1rem; align-items: center; padding: .5rem 1rem; border-bottom: 1px solid var(--line); }
header.top .brand { font-weight: 700; margin-right: auto; }
nav a, a.btnlink { display: inline-flex; align-items: center; min-height: 44px; padding: 0 .5rem; }
a { color: var(--info); }
h1 { font-size: 1.35rem; margin: 1rem 0 .5rem; overflow-wrap: anywhere; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
p, li, dd, td, th, summary { overflow-wrap: anywhere; }
.verdict { font-size: 1.15rem; font-weight: 600; padding: .75rem 1rem; border-radius: .5rem; background: var(--card); border-left: .4rem solid var(--ok); }
.verdict.bad { border-left-color: var(--bad); }
.flash { padding: .75rem 1rem; border-radius: .5rem; background: var(--card); border-left: .4rem solid var(--info); }
.flash.error { border-left-color: var(--bad); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: .6rem; padding: .75rem 1rem; margin: .75rem 0; }
.card h3 { margin: 0 0 .25rem; font-size: 1.05rem; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; margin-top: .5rem; }
.actions form { margin: 0; }
button, .button { min-height: 44px; min-width: 44px; padding: .5rem 1rem; font: inherit; font-weight: 600; border-radius: .5rem;
  border: 1px solid var(--btn); background: var(--btn); color: var(--btnfg); cursor: pointer; }
button.secondary { background: transparent; color: var(--btn); }
button.danger { background: var(--bad); border-color: var(--bad); color: #fff; }
input[type=text] { font: inherit; min-height: 44px; width: 100%; padding: .5rem; border-radius: .4rem; border: 1px solid var(--line); background: var(--bg); color: var(--fg); }
label { display: block; font-weight: 600; margin: .5rem 0 .25rem; }
.state { font-weight: 700; }
.state.ok { color: var(--ok); } .state.failing { color: var(--bad); } .state.waiting, .state.paused { color: var(--warn); } .state.disabled { color: var(--idle); }
.strip { display: flex; flex-wrap: wrap; gap: 2px; margin: .35rem 0; }
.strip span { display: inline-block; width: 8px; height: 18px; border-radius: 2px; background: var(--idle); }
.strip .ok { background: var(--ok); } .strip .bad { background: var(--bad); }
.strip .warn { background: var(--warn); } .strip .running { background: var(--info); }
dl.facts { display: grid; grid-template-columns: minmax(6rem, max-content) 1fr; gap: .25rem .75rem; margin: .25rem 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word; background: var(--bg); border: 1px solid var(--line);
  border-radius: .4rem; padding: .5rem; font: 13px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; max-height: 30rem; overflow-y: auto; }
ul.plain { list-style: none; padding: 0; margin: 0; }
ul.plain > li { border-top: 1px solid var(--line); padding: .5rem 0; }
ol.steps { padding-left: 1.25rem; margin: .25rem 0; }
.tone-ok, .tone-bad, .tone-warn { font-weight: 600; }
.tone-ok { color: var(--ok); } .tone-bad { color: var(--bad); } .tone-warn { color: var(--warn); }
.kill-on { background: var(--bad); color: #fff; padding: .75rem 1rem; border-radius: .5rem; font-weight: 600; }
.qr { display: block; width: min(100%, 18rem); height: auto; margin: .5rem 0; background: #fff; border-radius: .25rem; }
code#device-link { overflow-wrap: anywhere; word-break: break-all; font: 14px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
.this-device { font-size: .85rem; font-weight: 600; padding: .1rem .4rem; border-radius: .3rem; border: 1px solid var(--info); color: var(--info); }
.chart-figure { margin: 1rem 0; }
.chart { display: block; width: 100%; max-width: 36rem; height: auto; margin: .5rem 0; }
.chart text { fill: var(--muted); font: 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.chart .axis { stroke: var(--line); stroke-width: 1; fill: none; }
.chart .band { fill: var(--ok); fill-opacity: .08; }
.chart .median { stroke: var(--ok); stroke-width: 1.5; stroke-dasharray: 6 4; fill: none; }
.chart .limit { stroke: var(--bad); stroke-width: 1.5; stroke-dasharray: 2 3; fill: none; }
.chart .mark { stroke: var(--bg); stroke-width: 1; }
.chart .mark.ok { fill: var(--ok); } .chart .mark.bad { fill: var(--bad); } .chart .mark.warn { fill: var(--warn); }
.chart .mark.idle { fill: var(--idle); } .chart .mark.running { fill: var(--bg); stroke: var(--info); stroke-width: 2; }
.legend { display: flex; flex-wrap: wrap; gap: .25rem 1rem; margin: 0 0 .5rem; padding: 0; list-style: none; font-size: .9rem; }
.legend .key { display: inline-block; width: .8rem; height: .8rem; border-radius: 50%; margin-right: .3rem; vertical-align: -.1rem; background: var(--idle); }
.legend .key.ok { background: var(--ok); } .legend .key.bad { background: var(--bad); } .legend .key.warn { background: var(--warn); }
.legend .key.running { background: var(--bg); border: 2px solid var(--info); }
.legend .key.median { border-radius: 0; height: 0; border-top: 2px dashed var(--ok); background: none; }
.legend .key.limit { border-radius: 0; height: 0; border-top: 2px dotted var(--bad); background: none; }
footer { margin-top: 2rem; color: var(--muted); font-size: .9rem; }
/* A page that stopped following (its stream failed, or the session ended) says so: it is not current. */
body[data-live-state="lost"] header.top::after { content: "Not live: reconnecting…"; flex-basis: 100%; color: var(--warn); font-weight: 600; }
body[data-live-state="ended"] header.top::after { content: "Not live: logged out. Reload the page."; flex-basis: 100%; color: var(--bad); font-weight: 600; }
`;
