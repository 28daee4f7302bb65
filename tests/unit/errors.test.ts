import { describe, expect, it } from 'vitest';
import { coerceError, errorCode, errorMessage } from '../../src/errors.js';

describe('what was thrown, in words', () => {
  it('keeps an Error as it is, and makes one of anything else', () => {
    const e = new Error('disk full');
    expect(coerceError(e)).toBe(e);
    expect(errorMessage('a plain string')).toBe('a plain string');
    expect(errorMessage({ reason: 'an object' })).toBe('{"reason":"an object"}');
    expect(errorMessage(undefined)).toBe('undefined');
    expect(errorMessage(null)).toBe('null');
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(errorMessage(circular)).toBe('[object Object]');
  });

  it('reads a system code only when it is one', () => {
    expect(errorCode(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe('ENOENT');
    expect(errorCode(Object.assign(new Error('x'), { code: 42 }))).toBeUndefined();
    expect(errorCode(null)).toBeUndefined();
    expect(errorCode('ENOENT')).toBeUndefined();
  });
});
