// Shared by the servers of the daemon (the dashboard, src/web/server.ts, and the control socket,
// src/control/socket.ts): how an HTTP server is stopped.
import type { Server } from 'node:http';

/**
 * Closes every open connection at once (idle keep-alives and live streams would otherwise hold
 * the server open), then the server itself; resolves when it no longer listens.
 */
export async function closeServer(s: Server): Promise<void> {
  s.closeAllConnections();
  await new Promise<void>((resolve) => s.close(() => resolve()));
}
