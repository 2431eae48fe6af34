import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/core/errors.js';
import { CLOSE } from '../../src/protocol/close-codes.js';
import { ERROR_TABLE, closeCodeOf, httpStatusOf, seedCodeOf } from '../../src/protocol/error-table.js';

describe('error table', () => {
  it('gives every error code a form on every wire', () => {
    expect(Object.keys(ERROR_TABLE).sort()).toEqual([...ERROR_CODES].sort());
    for (const code of ERROR_CODES) {
      const forms = ERROR_TABLE[code];
      expect(forms.seed).toMatch(/^[a-z-]+$/);
      expect(['ERROR', 'ID-TAKEN']).toContain(forms.peerjs);
      expect(forms.close === 1009 || forms.close === 1011 || forms.close === 1012 || (forms.close >= 4000 && forms.close < 5000)).toBe(true);
      expect(forms.http[0]).toBeGreaterThanOrEqual(400);
    }
  });

  it('seed and JSON agree on a join timeout and an internal error', () => {
    expect(seedCodeOf('join-timeout')).toBe('join-timeout');
    expect(closeCodeOf('join-timeout')).toBe(CLOSE.joinTimeout);
    expect(seedCodeOf('internal')).toBe('internal');
    expect(closeCodeOf('internal')).toBe(1011);
    expect(httpStatusOf('internal')[0]).toBe(500);
  });

  it('keeps the codes clients already know', () => {
    expect(closeCodeOf('unauthorized')).toBe(CLOSE.unauthorized);
    expect(closeCodeOf('forbidden')).toBe(CLOSE.forbidden);
    expect(closeCodeOf('conflict')).toBe(CLOSE.conflict);
    expect(closeCodeOf('rate-limited')).toBe(CLOSE.rateLimited);
    expect(closeCodeOf('unavailable')).toBe(CLOSE.restart);
    expect(seedCodeOf('bad-request')).toBe('bad-frame');
    expect(seedCodeOf('not-found')).toBe('no-such-peer');
    expect(httpStatusOf('unauthorized')[0]).toBe(401);
    expect(httpStatusOf('forbidden')[0]).toBe(403);
    expect(httpStatusOf('rate-limited')[0]).toBe(429);
    expect(httpStatusOf('unavailable')[0]).toBe(503);
    expect(ERROR_TABLE.conflict.peerjs).toBe('ID-TAKEN');
  });
});
