// Live pages without polling: the daemon tells every open page what changed (server-sent events,
// one long response per page), and the page fetches itself once and swaps in its new content.
// Without a change nothing is sent and nothing is fetched; a comment every 25 s keeps proxies
// from closing an idle stream and ends the streams of sessions that were revoked or expired.
import type { ServerResponse } from 'node:http';
import type { Change } from '../store/store.js';

/** A change an open page may show: a row the store wrote, or the kill switch (a file, not a row). */
export type LiveChange = Change | { what: 'kill'; job: null };

/** Streams at most per session (a desktop with many tabs) and in all: each holds a connection, and connections are capped at 128. */
const PER_SESSION = 16;
const TOTAL = 64;
const KEEPALIVE_MS = 25_000;
/** A page that reads nothing for this much queued data is stalled: its stream ends, memory stays flat. */
const MAX_QUEUED = 64 * 1024;

interface Stream {
  res: ServerResponse;
  session: number;
  /** Is the session still good (not revoked, not expired)? Asked at each keepalive, never renewing it. */
  alive: () => boolean;
}

export class LiveStreams {
  private readonly streams = new Set<Stream>();
  private pending: LiveChange[] = [];
  private flushing = false;
  private keepalive: NodeJS.Timeout | null = null;

  get size(): number {
    return this.streams.size;
  }

  /** Holds `res` open as an event stream until the page goes, its session ends or the server stops. */
  open(res: ServerResponse, session: number, alive: () => boolean, headers: Record<string, string>): void {
    const mine = [...this.streams].filter((s) => s.session === session);
    // The oldest goes first: a page left open on another tab is the one not looked at.
    if (mine.length >= PER_SESSION) this.end(mine[0]!);
    if (this.streams.size >= TOTAL) this.end(this.streams.values().next().value!);
    res.writeHead(200, {
      ...headers,
      'Content-Type': 'text/event-stream; charset=utf-8',
      // nginx buffers a proxied response unless told not to; an event must not wait in a buffer.
      'X-Accel-Buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    // A reconnecting page waits 5 s (the browser's EventSource does this by itself after a drop).
    res.write('retry: 5000\n\n');
    const s: Stream = { res, session, alive };
    this.streams.add(s);
    res.on('close', () => this.streams.delete(s));
    this.keepalive ??= setInterval(() => this.beat(), KEEPALIVE_MS).unref();
  }

  /** Tells every open page; changes of one turn of the event loop go out as one event. */
  push(c: LiveChange): void {
    if (this.streams.size === 0) return;
    this.pending.push(c);
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => this.flush());
  }

  /** Ends the streams of one session (revoked), or all. */
  endSession(session?: number): void {
    for (const s of [...this.streams]) if (session === undefined || s.session === session) this.end(s);
  }

  close(): void {
    this.endSession();
    if (this.keepalive) clearInterval(this.keepalive);
    this.keepalive = null;
  }

  private flush(): void {
    this.flushing = false;
    const seen = new Set<string>();
    const list = this.pending.filter((c) => {
      const key = `${c.what}\0${c.job ?? ''}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    this.pending = [];
    if (list.length) this.send(`event: change\ndata: ${JSON.stringify(list)}\n\n`);
  }

  private beat(): void {
    for (const s of [...this.streams]) {
      let alive = false;
      try {
        alive = s.alive();
      } catch {
        // the database cannot say (full, locked): the stream ends; the page reconnects and is asked again
      }
      if (!alive) this.end(s);
    }
    if (this.streams.size === 0 && this.keepalive) {
      clearInterval(this.keepalive);
      this.keepalive = null;
      return;
    }
    this.send(': still here\n\n');
  }

  private send(text: string): void {
    for (const s of [...this.streams]) {
      if (s.res.writableLength > MAX_QUEUED) this.end(s);
      else s.res.write(text);
    }
  }

  private end(s: Stream): void {
    this.streams.delete(s);
    s.res.end();
  }
}

/**
 * The page's side, served as /live.js (the Content-Security-Policy allows script from this origin
 * only, never inline). `data-live` on <body> says what the page shows: "all", or "job:NAME" for a
 * job's own pages, which refresh only for that job and for what concerns every job. A page fetches
 * itself at most once a second however many changes arrive; the content of #live is replaced, the
 * flash message above it (the answer to a button) stays, and so do the <details> the person opened;
 * while text is selected in it, the refresh waits. A hidden tab closes its stream (browsers allow
 * six connections to a host over HTTP/1.1: six open tabs must not starve the seventh) and catches
 * up when shown. A stream that fails is opened again after 5 s, then up to a minute apart, and
 * meanwhile the page says it is not live (data-live-state="lost", shown by the stylesheet).
 */
export const LIVE_SCRIPT = `"use strict";
(() => {
  const body = document.body;
  const scope = body.dataset.live;
  if (!scope || !window.EventSource || !window.fetch || !window.DOMParser) return;
  const job = scope.startsWith("job:") ? scope.slice(4) : null;
  const GAP = 1000;
  let busy = false, again = false, last = 0, timer = null, events = null, retry = null, wait = 5000, ended = false, opened = false;
  const relevant = (list) => job === null || list.some((c) => c.job === null || c.job === job || c.what === "kill");
  const schedule = () => {
    if (timer !== null) return;
    timer = setTimeout(() => { timer = null; refresh(); }, Math.max(0, last + GAP - Date.now()));
  };
  const selecting = () => {
    const sel = window.getSelection();
    const here = document.getElementById("live");
    return sel && !sel.isCollapsed && here && (here.contains(sel.anchorNode) || here.contains(sel.focusNode));
  };
  let waitingForSelection = false;
  const refresh = async () => {
    if (busy) { again = true; return; }
    // Text being selected (to copy a log line) would be lost: wait until it is let go.
    if (selecting()) {
      if (!waitingForSelection) {
        waitingForSelection = true;
        document.addEventListener("selectionchange", function once() {
          if (selecting()) return;
          document.removeEventListener("selectionchange", once);
          waitingForSelection = false;
          schedule();
        });
      }
      return;
    }
    busy = true;
    last = Date.now();
    try {
      const r = await fetch(location.href, { headers: { "X-Nightshift-Live": "1" }, credentials: "same-origin", cache: "no-store" });
      if (r.status === 401) { stop("ended"); return; }
      if (!r.ok) return;
      const next = new DOMParser().parseFromString(await r.text(), "text/html").getElementById("live");
      const here = document.getElementById("live");
      if (next && here) {
        // By id (a run's output is out-RUNID): a new run at the top moves every position.
        const open = new Set(Array.from(here.querySelectorAll("details[open][id]"), (d) => d.id));
        next.querySelectorAll("details[id]").forEach((d) => { if (open.has(d.id)) d.open = true; });
        here.replaceWith(document.adoptNode(next));
      }
      body.dataset.liveAt = String(Date.now());
    } catch (e) {
      // offline for a moment: the next change tries again
    } finally {
      busy = false;
      if (again) { again = false; schedule(); }
    }
  };
  const stop = (state) => {
    ended = state === "ended";
    if (events) events.close();
    events = null;
    body.dataset.liveState = state;
  };
  const open = () => {
    // Loaded in a background tab: what changes before it is shown must be fetched when it is.
    if (document.hidden) { opened = true; return; }
    if (ended || events) return;
    events = new EventSource("/events");
    events.addEventListener("open", () => {
      body.dataset.liveState = "open";
      wait = 5000;
      // Opened again (after a drop, or the tab shown again): what changed meanwhile was not told.
      if (opened) schedule();
      opened = true;
    });
    events.addEventListener("change", (e) => {
      let list;
      try { list = JSON.parse(e.data); } catch (err) { return; }
      if (Array.isArray(list) && relevant(list)) schedule();
    });
    events.addEventListener("error", () => {
      // The browser retries by itself only after a dropped stream; an answer other than a stream
      // (a proxy's 502 while nightshift restarts, a 401) ends it for good: try again, later each time.
      if (!events) return;
      // Either way the page is not current meanwhile, and says so.
      if (events.readyState !== EventSource.CLOSED) { body.dataset.liveState = "lost"; return; }
      stop("lost");
      // Logged out meanwhile? The page's own fetch says so (401: the page stops for good).
      schedule();
      clearTimeout(retry);
      retry = setTimeout(() => { retry = null; open(); }, wait);
      wait = Math.min(wait * 2, 60000);
    });
  };
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) { if (events) stop("hidden"); }
    else open();
  });
  open();
})();
`;
