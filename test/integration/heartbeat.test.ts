import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHerald, type Running } from '../helpers/herald.js';
import { JsonClient, uid } from '../helpers/json-client.js';
import { TestSocket } from '../helpers/socket.js';

/**
 * Liveness needs a pong that answers the server's own ping: each ping carries a token, and
 * only a pong echoing it counts. Unsolicited pongs and pongs replaying an old token keep no
 * one alive. No timing is asserted: "within two intervals" is checked by counting the pings
 * the peer saw, and waits are on events with generous deadlines.
 */
describe('heartbeat liveness', () => {
  let server: Running;
  const sockets: TestSocket[] = [];
  const timers: NodeJS.Timeout[] = [];
  beforeAll(async () => {
    // Long enough that a loaded machine answers a real ping within one interval.
    server = await startHerald({ heartbeatMs: 1000, joinTimeoutMs: 0 });
  });
  afterEach(() => {
    for (const t of timers.splice(0)) clearInterval(t);
    for (const s of sockets.splice(0)) s.ws.terminate();
  });
  afterAll(async () => {
    await server.stop();
  });

  const open = async (path: string, options?: ConstructorParameters<typeof TestSocket>[1]) => {
    const s = new TestSocket(server.ws + path, options);
    sockets.push(s);
    await s.opened;
    return s;
  };

  it('drops a reader that stops reading and only sends unsolicited and stale pongs', async () => {
    const room = uid('hb-room');
    const user = uid('hb-user');
    const s = await open(`/webrtc/sender/${room}`);
    const r = await open(`/webrtc/reader/${user}`, { autoPong: false });
    // Answer the first ping properly, so its token is known, then stop reading.
    const first = new Promise<Buffer>((resolve) => r.ws.once('ping', resolve));
    r.send(`join|${room}`);
    expect(await s.next()).toBe(`join|${user}`);
    const token = await first;
    expect(token.length).toBeGreaterThan(0); // the server's ping carries a token
    r.ws.pong(token);
    (r.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    let pongs = 0;
    const garbage = Buffer.alloc(token.length, 0x41);
    timers.push(
      setInterval(() => {
        // Unsolicited (empty), made-up, and the stale token of the ping already answered.
        for (const payload of [Buffer.alloc(0), garbage, token]) r.ws.pong(payload);
        pongs += 3;
      }, 20),
    );
    // The server drops it: the sender is told the reader left (the seed protocol has no resume).
    expect(await s.next((m) => m === `leave|${user}`, 20_000)).toBe(`leave|${user}`);
    expect(pongs).toBeGreaterThan(0);
    expect(server.herald.hub.peerCount).toBe(1);
  });

  it('drops a JSON peer that answers pings with a stale token at the first unanswered visit (within two intervals)', async () => {
    const c = await JsonClient.open(server.ws, { autoPong: false });
    sockets.push(c.socket);
    await c.hello();
    await c.join(uid('hb-json'), 'peer');
    let answered: Buffer | undefined;
    let pingsAfterLastAnswer = 0;
    c.socket.ws.on('ping', (data: Buffer) => {
      if (!answered) {
        answered = Buffer.from(data);
        c.socket.ws.pong(data); // the one real answer
        return;
      }
      pingsAfterLastAnswer++;
      c.socket.ws.pong(answered); // stale: the token of an earlier ping
      c.socket.ws.pong(); // unsolicited
    });
    const closed = await c.socket.closed;
    expect(closed.code).toBe(1006); // terminated, no close frame
    expect(answered).toBeDefined();
    // At most one more ping after its last real answer, then dropped at the next visit: stale
    // and unsolicited pongs bought it nothing.
    expect(pingsAfterLastAnswer).toBeLessThanOrEqual(1);
  });

  it('keeps a JSON peer that answers every ping (ws echoes the token) across several intervals', async () => {
    const a = await JsonClient.connect(server.ws);
    const b = await JsonClient.connect(server.ws);
    sockets.push(a.socket, b.socket);
    const room = uid('hb-keep');
    await a.join(room, 'peer');
    await b.join(room, 'peer');
    const tokens = new Set<string>();
    await new Promise<void>((resolve) => {
      b.socket.ws.on('ping', (data: Buffer) => {
        tokens.add(data.toString('hex'));
        if (tokens.size === 4) resolve();
      });
    });
    expect(b.socket.ws.readyState).toBe(b.socket.ws.OPEN);
    const tag = uid('alive');
    await a.signal(room, b.peerId, { tag });
    expect((await b.nextSignal(tag)).from).toBe(a.peerId);
  });
});
