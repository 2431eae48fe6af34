import { describe, expect, it } from 'vitest';
import { startHerald } from '../helpers/herald.js';
import { Instance, httpStatus, waitFor } from '../helpers/instances.js';
import { JsonClient, uid } from '../helpers/json-client.js';
import { TestSocket, refusedStatus } from '../helpers/socket.js';


/** A JSON broadcaster/viewer pair and a seed sender/reader pair, each after a round trip. */
async function clients(ws: string) {
  const room = uid('room');
  const b = await JsonClient.connect(ws);
  await b.join(room, 'broadcaster');
  const v = await JsonClient.connect(ws);
  await v.join(room, 'viewer');
  await v.signal(room, b.peerId, { tag: 'hi' });
  await b.nextSignal('hi');
  const seedRoom = uid('room');
  const sender = await TestSocket.open(`${ws}/webrtc/sender/${seedRoom}`);
  const reader = await TestSocket.open(`${ws}/webrtc/reader/${uid('u')}`);
  reader.send(`join|${seedRoom}`);
  await sender.nextStarting('join|');
  return { b, v, sender, reader };
}

describe('drain (in process)', () => {
  it('not ready at once, new upgrades refused, then JSON gets bye + 1012 and seed 1001', async () => {
    const server = await startHerald({ drainGraceMs: 1500, drainDeadlineMs: 2000 });
    const { b, v, sender, reader } = await clients(server.ws);
    expect((await fetch(`${server.http}/readyz`)).status).toBe(200);
    const stopped = server.herald.stop();

    // During the grace period: not ready, alive, and refusing new sockets on both protocols.
    const ready = await fetch(`${server.http}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'not-ready', reason: 'draining' });
    expect((await fetch(`${server.http}/healthz`)).status).toBe(200);
    expect(await refusedStatus(`${server.ws}/webrtc/sender/${uid('room')}`)).toBe(503);
    const late = await TestSocket.open(`${server.ws}/ws`);
    expect((await late.nextJson('error')).code).toBe('unavailable');
    expect((await late.closed).code).toBe(1012);

    for (const c of [b, v]) {
      const bye = await c.nextJson('bye');
      expect(bye).toMatchObject({ type: 'bye', reconnect: true });
      expect(typeof bye.reason).toBe('string');
      expect((await c.closed).code).toBe(1012);
      // bye came before the close, as the last message.
      expect(JSON.parse(c.socket.received.at(-1)!).type).toBe('bye');
    }
    expect((await sender.closed).code).toBe(1001);
    expect((await reader.closed).code).toBe(1001);
    await stopped;
    expect(await httpStatus(`${server.http}/healthz`)).toBe(0);
  });

  it('a socket that never answers the close is cut at the drain deadline', async () => {
    const server = await startHerald({ drainGraceMs: 0, drainDeadlineMs: 600 });
    const stuck = await JsonClient.connect(server.ws);
    const fine = await JsonClient.connect(server.ws);
    // Stop reading: the close frame is never seen, so the client never answers it.
    (stuck.socket.ws as any)._socket.pause();
    const started = Date.now();
    await server.herald.stop();
    const took = Date.now() - started;
    expect((await fine.closed).code).toBe(1012);
    expect(took).toBeGreaterThanOrEqual(550);
    expect(took).toBeLessThan(8000);
    (stuck.socket.ws as any)._socket.resume();
    const closed = await stuck.closed;
    expect([1006, 1012]).toContain(closed.code);
  });
});

describe('drain (separate process, SIGTERM)', () => {
  it('exits 0 after closing JSON sockets with 1012 and seed sockets with 1001; /readyz is 503 meanwhile', async () => {
    const instance = await Instance.start({ name: 'drain', env: { HERALD_DRAIN_GRACE_MS: '1500', HERALD_DRAIN_DEADLINE_MS: '3000', HERALD_SECRET: '' } });
    try {
      const { b, v, sender, reader } = await clients(instance.ws);
      expect(await instance.readyz()).toBe(200);
      instance.proc.kill('SIGTERM');
      await waitFor('/readyz 503 during the drain', async () => (await instance.readyz()) === 503, 5000, 20);
      expect(instance.alive).toBe(true);
      expect(await refusedStatus(`${instance.ws}/webrtc/reader/${uid('u')}`)).toBe(503);
      const [bye] = await Promise.all([b.nextJson('bye'), v.nextJson('bye')]);
      expect(bye.reconnect).toBe(true);
      expect((await b.closed).code).toBe(1012);
      expect((await v.closed).code).toBe(1012);
      expect((await sender.closed).code).toBe(1001);
      expect((await reader.closed).code).toBe(1001);
      const { code, signal } = await instance.exited;
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      // Started without HERALD_SECRET: it said so, loudly, once.
      expect(instance.output.match(/WARNING: HERALD_SECRET is not set/g)).toHaveLength(1);
    } finally {
      await instance.kill();
    }
  });
});
