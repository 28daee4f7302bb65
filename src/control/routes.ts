// What the control socket answers: the URL of each action and how its words become arguments and
// status codes. The daemon supplies the actions themselves (ControlActions); this file knows
// HTTP, not jobs or heals.
import { ControlError, type Route } from './socket.js';

export type PingKind = 'start' | 'success' | 'fail';

export interface ControlActions {
  health(): unknown;
  live(): unknown;
  /** Runs a job now and resolves with its finished run. */
  runNow(job: string): Promise<unknown>;
  ping(job: string, kind: PingKind): unknown;
  /** An external job's HTTP ping key and address: made on first use, a new one when rotate. */
  pingKey(job: string, rotate: boolean): unknown;
  /** One job by name, or every job (null). */
  setPaused(job: string | null, paused: boolean, by: string): unknown;
  answer(attempt: number, what: 'approve' | 'deny', by: string): unknown;
}

/** Who pressed it, as the journal, `heals` and the digest say it (the dashboard says "web (LABEL)"). */
export const COMMAND_LINE = 'the command line';

const nameOf = (name: string | undefined): string => {
  if (name === undefined || name === '') throw new ControlError('which job? the URL names none', 400);
  return name;
};

function attemptOf(idText: string | undefined): number {
  const id = Number(idText);
  if (!Number.isInteger(id) || id <= 0)
    throw new ControlError(`"${idText}" is not a heal attempt id (a number, as nightshift status or heals shows it)`, 400);
  return id;
}

export function controlRoutes(a: ControlActions): Route[] {
  return [
    { method: 'GET', path: '/health', handler: () => a.health() },
    { method: 'GET', path: '/status', handler: () => a.live() },
    { method: 'POST', path: '/run/:name', handler: ({ name }) => a.runNow(nameOf(name)) },
    ...(['GET', 'POST'] as const).flatMap((method) => [
      { method, path: '/ping/:name', handler: ({ name }: { name?: string }) => a.ping(nameOf(name), 'success') },
      { method, path: '/ping/:name/start', handler: ({ name }: { name?: string }) => a.ping(nameOf(name), 'start') },
      { method, path: '/ping/:name/fail', handler: ({ name }: { name?: string }) => a.ping(nameOf(name), 'fail') },
    ]),
    { method: 'POST', path: '/ping-url/:name', handler: ({ name }) => a.pingKey(nameOf(name), false) },
    { method: 'POST', path: '/ping-url/:name/rotate', handler: ({ name }) => a.pingKey(nameOf(name), true) },
    { method: 'POST', path: '/pause/:name', handler: ({ name }) => a.setPaused(nameOf(name), true, COMMAND_LINE) },
    { method: 'POST', path: '/resume/:name', handler: ({ name }) => a.setPaused(nameOf(name), false, COMMAND_LINE) },
    { method: 'POST', path: '/approve/:name', handler: ({ name }) => a.answer(attemptOf(name), 'approve', COMMAND_LINE) },
    { method: 'POST', path: '/deny/:name', handler: ({ name }) => a.answer(attemptOf(name), 'deny', COMMAND_LINE) },
    { method: 'POST', path: '/pause-all', handler: () => a.setPaused(null, true, COMMAND_LINE) },
    { method: 'POST', path: '/resume-all', handler: () => a.setPaused(null, false, COMMAND_LINE) },
  ];
}
