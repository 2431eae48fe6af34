import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { iceServersFor } from '../../src/auth/turn.js';
import { loadConfig } from '../../src/config.js';

const NOW = Date.UTC(2030, 0, 1, 12, 0, 0); // a fixed clock: 1893499200 s

describe('iceServersFor (TURN REST credentials, coturn use-auth-secret)', () => {
  const config = loadConfig(
    {
      iceServers: JSON.stringify([{ urls: 'stun:stun.example.org:3478' }]),
      turnSecret: 'north-wind',
      turnUrls: 'turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349',
      turnTtlSeconds: 600,
    },
    {},
  );

  it('keeps the static list first and appends one TURN entry with the configured URLs', () => {
    const servers = iceServersFor(config, 'alice', NOW);
    expect(servers).toHaveLength(2);
    expect(servers[0]).toEqual({ urls: 'stun:stun.example.org:3478' });
    expect(servers[1]!.urls).toEqual(['turn:turn.example.org:3478?transport=udp', 'turns:turn.example.org:5349']);
  });

  it('username is <expiry>:<sub> with expiry = now + TTL, and the credential matches an independent HMAC-SHA1', () => {
    const turn = iceServersFor(config, 'alice', NOW)[1]!;
    expect(turn.username).toBe('1893499800:alice');
    // Computed here, independently of src/: base64(HMAC-SHA1(secret, username)).
    const expected = createHmac('sha1', 'north-wind').update('1893499800:alice').digest('base64');
    expect(turn.credential).toBe(expected);
    // A known answer from openssl (printf '1893499800:alice' | openssl dgst -sha1 -hmac north-wind -binary | base64).
    expect(turn.credential).toBe('9PtlZ0rwXsOyGNkmUsmLRxYMJnU=');
  });

  it('credentials differ per identity and per expiry', () => {
    const a = iceServersFor(config, 'alice', NOW)[1]!;
    const b = iceServersFor(config, 'bob', NOW)[1]!;
    const later = iceServersFor(config, 'alice', NOW + 1000)[1]!;
    expect(b.username).toBe('1893499800:bob');
    expect(b.credential).not.toBe(a.credential);
    expect(later.username).toBe('1893499801:alice');
    expect(later.credential).not.toBe(a.credential);
  });

  it('an anonymous caller (open mode) still gets a valid credential', () => {
    const turn = iceServersFor(config, undefined, NOW)[1]!;
    expect(turn.username).toBe('1893499800:anonymous');
    expect(turn.credential).toBe(createHmac('sha1', 'north-wind').update(turn.username!).digest('base64'));
  });

  it('without TURN_SECRET only the static list is returned; with neither, an empty list', () => {
    const staticOnly = loadConfig({ iceServers: '[{"urls":["stun:a","stun:b"]}]' }, {});
    expect(iceServersFor(staticOnly, 'alice', NOW)).toEqual([{ urls: ['stun:a', 'stun:b'] }]);
    expect(iceServersFor(loadConfig({}, {}), 'alice', NOW)).toEqual([]);
  });
});
