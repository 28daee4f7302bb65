import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';

describe('logger', () => {
  it('writes JSON lines and redacts job environments and SMTP passwords wherever they appear', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const log = createLogger({ destination: sink });
    log.info({ job: 'x', env: { API_TOKEN: 'tok-123' } }, 'top-level env');
    log.info({ spec: { env: { DB_PASS: 'pw-456' }, command: ['run'] } }, 'nested spec env');
    log.info({ policy: { digest: { smtp: { host: 'h', pass: 'smtp-789' } } } }, 'policy');
    const text = lines.join('');
    for (const secret of ['tok-123', 'pw-456', 'smtp-789']) expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
    const parsed = lines.map((l) => JSON.parse(l) as { msg: string; level: string; time: string });
    expect(parsed.map((p) => p.msg)).toEqual(['top-level env', 'nested spec env', 'policy']);
    expect(parsed[0]!.level).toBe('info');
    expect(parsed[1]).toMatchObject({ spec: { command: ['run'] } });
  });
});
