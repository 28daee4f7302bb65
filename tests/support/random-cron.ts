// Seeded random cron expressions shared by the cron and schedule tests.

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomField(rand: () => number, min: number, max: number, starBias: number): string {
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const r = rand();
  if (r < starBias) return '*';
  if (r < starBias + 0.15) return `*/${int(2, Math.max(2, Math.floor((max - min + 1) / 2)))}`;
  if (r < starBias + 0.35) return String(int(min, max));
  if (r < starBias + 0.5) {
    const a = int(min, max);
    return `${a}-${int(a, max)}`;
  }
  if (r < starBias + 0.6) {
    const a = int(min, max);
    return `${a}-${int(a, max)}/${int(1, 5)}`;
  }
  const n = int(2, 4);
  const items = new Set<number>();
  for (let i = 0; i < n; i++) items.add(int(min, max));
  return [...items].join(',');
}

/**
 * A random valid-looking expression. With allowOr false, at least one of day-of-month and
 * day-of-week is "*" (the AND case node-cron also implements).
 */
export function randomExpr(rand: () => number, opts: { seconds: boolean; allowOr: boolean }): string {
  const dom = randomField(rand, 1, 28, 0.6);
  let dow = randomField(rand, 0, 6, 0.6);
  if (!opts.allowOr && dom !== '*' && !dom.startsWith('*')) dow = '*';
  const fields = [randomField(rand, 0, 59, 0.2), randomField(rand, 0, 23, 0.3), dom, randomField(rand, 1, 12, 0.7), dow];
  if (opts.seconds) fields.unshift(randomField(rand, 0, 59, 0.2));
  return fields.join(' ');
}
