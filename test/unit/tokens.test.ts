import { SignJWT, UnsecuredJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { Tokens, tokenFrom } from '../../src/auth/tokens.js';
import { HeraldError } from '../../src/core/errors.js';
import { checkGrant } from '../../src/core/grant.js';

const SECRET = '0123456789abcdef0123';
const key = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);

/** Signs claims with jose directly, so the test does not trust Tokens.mint to build them. */
function sign(claims: Record<string, unknown>, secret: Uint8Array = key, alg = 'HS256') {
  return new SignJWT(claims).setProtectedHeader({ alg }).sign(secret);
}

async function rejection(p: Promise<unknown>): Promise<HeraldError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HeraldError);
  return err as HeraldError;
}

describe('Tokens', () => {
  const tokens = new Tokens(SECRET);

  it('a minted token verifies to its grant and carries exactly the minted claims', async () => {
    const jwt = await tokens.mint({ sub: 'alice', room: 'R', roles: ['viewer', 'peer'], ttl: '1h' });
    const grant = await tokens.verify(jwt);
    expect(grant.sub).toBe('alice');
    expect(grant.room).toBe('R');
    expect([...grant.roles].sort()).toEqual(['peer', 'viewer']);
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
    expect(JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString())).toEqual({ alg: 'HS256' });
    expect(payload.exp - now()).toBeGreaterThan(3590);
    expect(payload.exp - now()).toBeLessThanOrEqual(3600);
  });

  it('a numeric ttl is seconds from now', async () => {
    const jwt = await tokens.mint({ sub: 'a', room: '*', roles: ['admin'], ttl: 120 });
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
    expect(payload.exp - now()).toBeGreaterThan(110);
    expect(payload.exp - now()).toBeLessThanOrEqual(120);
  });

  it('accepts a token signed elsewhere with the same secret (interoperable HS256)', async () => {
    const jwt = await sign({ sub: 'bob', room: '*', roles: ['broadcaster'], exp: now() + 60 });
    const grant = await tokens.verify(jwt);
    expect(grant).toMatchObject({ sub: 'bob', room: '*' });
    expect(grant.roles.has('broadcaster')).toBe(true);
  });

  it('refuses a missing token', async () => {
    expect((await rejection(tokens.verify(undefined))).code).toBe('unauthorized');
    expect((await rejection(tokens.verify(''))).code).toBe('unauthorized');
  });

  it('refuses an expired token, saying so', async () => {
    const jwt = await sign({ sub: 'a', room: 'R', roles: ['viewer'], exp: now() - 30 });
    const err = await rejection(tokens.verify(jwt));
    expect(err.code).toBe('unauthorized');
    expect(err.message).toMatch(/expired/);
  });

  it('refuses a token signed with another secret, and never echoes the token', async () => {
    const jwt = await sign({ sub: 'a', room: 'R', roles: ['viewer'], exp: now() + 60 }, new TextEncoder().encode('another-secret-1234567'));
    const err = await rejection(tokens.verify(jwt));
    expect(err.code).toBe('unauthorized');
    expect(err.message).toMatch(/signature/);
    expect(err.message).not.toContain(jwt);
    expect(err.message).not.toContain(jwt.split('.')[2]!);
  });

  it('refuses a tampered payload (claims changed after signing)', async () => {
    const jwt = await sign({ sub: 'a', room: 'R', roles: ['viewer'], exp: now() + 60 });
    const [h, , s] = jwt.split('.');
    const forged = Buffer.from(JSON.stringify({ sub: 'a', room: '*', roles: ['admin'], exp: now() + 60 })).toString('base64url');
    expect((await rejection(tokens.verify(`${h}.${forged}.${s}`))).code).toBe('unauthorized');
  });

  it('refuses an unsigned (alg none) token and a token of another HMAC algorithm', async () => {
    const unsecured = new UnsecuredJWT({ sub: 'a', room: '*', roles: ['admin'] }).setExpirationTime('1h').encode();
    expect((await rejection(tokens.verify(unsecured))).code).toBe('unauthorized');
    const hs512 = await sign({ sub: 'a', room: '*', roles: ['admin'], exp: now() + 60 }, new TextEncoder().encode(SECRET.repeat(4)), 'HS512');
    expect((await rejection(tokens.verify(hs512))).code).toBe('unauthorized');
  });

  it('refuses garbage', async () => {
    expect((await rejection(tokens.verify('not-a-jwt'))).code).toBe('unauthorized');
    expect((await rejection(tokens.verify('a.b.c'))).code).toBe('unauthorized');
  });

  it.each([
    ['no sub', { room: 'R', roles: ['viewer'] }],
    ['no room', { sub: 'a', roles: ['viewer'] }],
    ['no roles', { sub: 'a', room: 'R' }],
    ['empty roles', { sub: 'a', room: 'R', roles: [] }],
    ['an unknown role', { sub: 'a', room: 'R', roles: ['root'] }],
  ])('refuses a correctly signed token with %s', async (_name, claims) => {
    const jwt = await sign({ ...claims, exp: now() + 60 });
    const err = await rejection(tokens.verify(jwt));
    expect(err.code).toBe('unauthorized');
    expect(err.message).toMatch(/claims/);
  });

  it('refuses a token without exp (tokens must expire)', async () => {
    const jwt = await sign({ sub: 'a', room: 'R', roles: ['viewer'] });
    expect((await rejection(tokens.verify(jwt))).code).toBe('unauthorized');
  });
});

describe('tokenFrom', () => {
  it('reads ?token=, then Authorization: Bearer, and prefers the query', () => {
    expect(tokenFrom(new URL('http://h/ws?token=q1'), undefined)).toBe('q1');
    expect(tokenFrom(new URL('http://h/ws'), 'Bearer b1')).toBe('b1');
    expect(tokenFrom(new URL('http://h/ws'), 'bearer   b2')).toBe('b2');
    expect(tokenFrom(new URL('http://h/ws?token=q1'), 'Bearer b1')).toBe('q1');
    expect(tokenFrom(new URL('http://h/ws'), 'Basic abc')).toBeUndefined();
    expect(tokenFrom(new URL('http://h/ws'), undefined)).toBeUndefined();
  });
});

describe('checkGrant', () => {
  const grant = (room: string, ...roles: ('broadcaster' | 'viewer' | 'peer' | 'admin')[]) => ({ sub: 's', room, roles: new Set(roles) });
  const code = (f: () => void) => {
    try {
      f();
    } catch (err) {
      return (err as HeraldError).code;
    }
    return 'ok';
  };

  it('open mode (no grant) allows everything', () => {
    expect(code(() => checkGrant(undefined, 'R', 'broadcaster'))).toBe('ok');
  });

  it('allows the granted role in the granted room, or any room for *', () => {
    expect(code(() => checkGrant(grant('R', 'viewer'), 'R', 'viewer'))).toBe('ok');
    expect(code(() => checkGrant(grant('*', 'peer'), 'anything', 'peer'))).toBe('ok');
  });

  it('forbids another room or a role the token lacks', () => {
    expect(code(() => checkGrant(grant('R', 'viewer'), 'S', 'viewer'))).toBe('forbidden');
    expect(code(() => checkGrant(grant('R', 'viewer'), 'R', 'broadcaster'))).toBe('forbidden');
    expect(code(() => checkGrant(grant('*', 'admin'), 'R', 'viewer'))).toBe('forbidden');
  });
});
