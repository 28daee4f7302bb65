// The running daemon is controlled over HTTP on a unix socket in the state folder (mode 0600):
// only the daemon's own user can reach it, curl can speak it, and there is no TCP port to guard.
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { NAME_PATTERN } from '../names.js';
import { errorMessage } from '../errors.js';
import { closeServer } from '../http.js';

export class ControlError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export type Handler = (params: { name?: string; query: URLSearchParams; body: unknown }) => unknown;

export interface Route {
  method: 'GET' | 'POST';
  /** e.g. "/run/:name"; :name must be a valid job name. */
  path: string;
  handler: Handler;
}

const MAX_BODY = 64 * 1024;
// sun_path is 108 bytes on Linux; a longer path fails with an obscure EINVAL/ENAMETOOLONG.
export const MAX_SOCKET_PATH = 107;

export class ControlServer {
  private server: Server | null = null;

  constructor(
    private readonly socketPath: string,
    private readonly routes: Route[],
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  async start(): Promise<void> {
    if (Buffer.byteLength(this.socketPath) > MAX_SOCKET_PATH) {
      throw new ControlError(
        `the control socket path ${this.socketPath} is longer than ${MAX_SOCKET_PATH} bytes (a unix socket limit); use a shorter --state folder`,
        500,
      );
    }
    // Only the holder of the state lock gets here, so a socket file left by a dead daemon is stale.
    if (existsSync(this.socketPath)) unlinkSync(this.socketPath);
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 1000;
    server.headersTimeout = 10_000;
    // Requests like `run` wait for the job: no socket-level timeout.
    server.requestTimeout = 0;
    server.on('clientError', (_err, socket) => socket.destroy());
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(oldMask);
    }
    chmodSync(this.socketPath, 0o600);
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    await closeServer(s);
    try {
      unlinkSync(this.socketPath);
    } catch {
      // already gone
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, body: unknown): void => {
      if (res.headersSent || res.destroyed) return;
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    try {
      const url = new URL(req.url ?? '/', 'http://nightshift');
      const segments = url.pathname.split('/').filter(Boolean);
      let matchedPath = false;
      for (const route of this.routes) {
        const parts = route.path.split('/').filter(Boolean);
        if (parts.length !== segments.length) continue;
        let name: string | undefined;
        let ok = true;
        for (let i = 0; i < parts.length; i++) {
          if (parts[i] === ':name') {
            try {
              name = decodeURIComponent(segments[i]!);
            } catch {
              throw new ControlError('the job name in the URL is not valid percent-encoding', 400);
            }
          } else if (parts[i] !== segments[i]) ok = false;
        }
        if (!ok) continue;
        matchedPath = true;
        if (route.method !== req.method) continue;
        if (name !== undefined && !NAME_PATTERN.test(name)) {
          send(400, { error: `"${name.slice(0, 80)}" is not a valid job name` });
          return;
        }
        const body = await readBody(req);
        const result = await route.handler({ name, query: url.searchParams, body });
        send(200, result ?? { ok: true });
        return;
      }
      send(matchedPath ? 405 : 404, { error: matchedPath ? `${req.method} is not allowed here` : `no such endpoint: ${url.pathname}` });
    } catch (err) {
      if (err instanceof ControlError) send(err.status, { error: err.message });
      else {
        this.onError(err);
        send(500, { error: `internal error: ${errorMessage(err)}` });
      }
    }
  }
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  if (req.method !== 'POST') return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new ControlError('request body too large', 413);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ControlError('request body is not valid JSON', 400);
  }
}

export class DaemonUnreachable extends Error {}

/** Calls the daemon; DaemonUnreachable when nothing listens on the socket. */
export function callDaemon(
  socketPath: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        method,
        path,
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: hand back the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTSOCK') {
        reject(new DaemonUnreachable(`the nightshift daemon is not running (nothing listens on ${socketPath})`));
      } else if (err.code === 'EACCES') {
        reject(new DaemonUnreachable(`permission denied on ${socketPath}: run this as the user the daemon runs as`));
      } else reject(err);
    });
    if (payload) req.write(payload);
    req.end();
  });
}

/** Cheap liveness probe used by reading commands to say whether a daemon is up. */
export function daemonListening(socketPath: string, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    if (!existsSync(socketPath)) return resolve(false);
    const s = connect(socketPath);
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}
