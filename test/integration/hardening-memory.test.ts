import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Instance, waitFor } from '../helpers/instances.js';
import { JsonClient, uid } from '../helpers/json-client.js';
import { TestSocket } from '../helpers/socket.js';

/**
 * Findings 1 and 2 of the security probe, each with its probe's shape, against a Herald in
 * its own process so that its memory can be read off /proc (the probing clients live in
 * this process and do not count). The bounds are generous for a loaded 2-core box; the
 * figures before and after the fix are in docs/security.md.
 */

/** Resident set size of a process, in MB. */
function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  return kb / 1024;
}

let instance: Instance | undefined;
const sockets: { close(): unknown }[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await instance?.kill();
  instance = undefined;
});

/** Two JSON peers in one fresh room: the bystanders. */
async function pair(i: Instance): Promise<{ room: string; a: JsonClient; b: JsonClient }> {
  const room = uid('room');
  const a = await JsonClient.connect(i.ws);
  const b = await JsonClient.connect(i.ws);
  sockets.push(a.socket.ws, b.socket.ws);
  await a.join(room, 'peer');
  await b.join(room, 'peer');
  return { room, a, b };
}

/** Open JSON sockets on the instance, from its /metrics. */
async function jsonConnections(http: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  return Number(/^herald_connections\{protocol="json"\} (\d+)/m.exec(text)![1]);
}

describe('slow reader (finding 1)', () => {
  it('a peer that stops reading but keeps sending pongs, fed 60 KB signals by 5 senders, is closed after a few MB are buffered (server RSS +<64 MB); the senders keep relaying', async () => {
    instance = await Instance.start({ env: { NODE_OPTIONS: '--max-old-space-size=512' } });
    const room = uid('room');
    const victim = await JsonClient.connect(instance.ws);
    await victim.join(room, 'peer');
    const senders: JsonClient[] = [];
    for (let i = 0; i < 5; i++) {
      const s = await JsonClient.connect(instance.ws);
      await s.join(room, 'peer');
      senders.push(s);
      sockets.push(s.socket.ws);
    }
    expect(await jsonConnections(instance.http)).toBe(senders.length + 1);
    const before = rssMb(instance.proc.pid!);
    // The probe: the victim's TCP socket stops reading; it keeps sending unsolicited pongs.
    const raw = (victim.socket.ws as any)._socket as import('node:net').Socket;
    raw.pause();
    const pongs = setInterval(() => victim.socket.ws.pong(), 200);
    const data = 'x'.repeat(60 * 1024 - 200);
    let sent = 0;
    let peak = before;
    try {
      // Each sender stays inside the default rate limit (100/s): 20 signals per 250 ms.
      // Bounded: at most 30 s, or until the server has dropped the victim.
      await waitFor('the server to drop the non-reading peer', async () => {
        for (const s of senders) for (let k = 0; k < 20; k++) s.signalNoAck(room, victim.peerId, data);
        sent += senders.length * 20;
        peak = Math.max(peak, rssMb(instance!.proc.pid!));
        return (await jsonConnections(instance!.http)) === senders.length;
      }, 25_000, 250);
    } finally {
      clearInterval(pongs);
    }
    const sentMb = (sent * 60) / 1024;
    console.log(`slow reader: sent ${sentMb.toFixed(0)} MB, rss ${before.toFixed(0)} -> peak ${peak.toFixed(0)} MB`);
    // Without the cap the server held everything sent (hundreds of MB here); with it, the
    // victim's buffer stops at HERALD_MAX_SEND_BUFFER_BYTES (4 MiB) plus one frame.
    expect(sentMb).toBeGreaterThan(4);
    expect(peak - before).toBeLessThan(64);
    // The senders were not disturbed: they still relay to each other.
    await senders[0]!.signal(room, senders[1]!.peerId, { tag: 'after' });
    expect((await senders[1]!.nextSignal('after')).from).toBe(senders[0]!.peerId);
    expect(instance.alive).toBe(true);
    raw.destroy();
  });

  it('a reader that stalls while less than the cap piles up keeps its socket and then gets every signal', async () => {
    instance = await Instance.start();
    const { room, a, b } = await pair(instance);
    const raw = (b.socket.ws as any)._socket as import('node:net').Socket;
    raw.pause();
    const data = 'y'.repeat(30 * 1024);
    for (let i = 0; i < 100; i++) a.signalNoAck(room, b.peerId, { tag: `s${i}`, data }); // 3 MB < 4 MiB
    await a.signal(room, b.peerId, { tag: 'last' }); // acked: the server has handled all of them
    raw.resume();
    for (let i = 0; i < 100; i++) await b.nextSignal(`s${i}`);
    await b.nextSignal('last');
    expect(b.socket.ws.readyState).toBe(b.socket.ws.OPEN);
  });
});

describe('fragment bomb (finding 2)', () => {
  it('40 sockets sending 1-byte fragments that never finish a message are closed with 1008 past 64 fragments; memory stays flat', async () => {
    instance = await Instance.start({ env: { NODE_OPTIONS: '--max-old-space-size=512' } });
    const { room, a, b } = await pair(instance);
    const before = rssMb(instance.proc.pid!);
    const bombs = await Promise.all(Array.from({ length: 40 }, () => TestSocket.open(`${instance!.ws}/ws`)));
    const FRAGMENTS = 5000; // 40 x 5,000 one-byte fragments: 200,000 Buffers before the fix
    let peak = before;
    for (let i = 0; i < FRAGMENTS; i += 500) {
      for (const bomb of bombs) {
        if (bomb.ws.readyState !== bomb.ws.OPEN) continue;
        for (let k = 0; k < 500; k++) bomb.ws.send('x', { fin: false });
      }
      // Let the server read what was sent before measuring.
      await new Promise((r) => setImmediate(r));
      peak = Math.max(peak, rssMb(instance.proc.pid!));
    }
    const closes = await Promise.all(bombs.map((s) => Promise.race([s.closed, new Promise<undefined>((r) => setTimeout(r, 20_000))])));
    peak = Math.max(peak, rssMb(instance.proc.pid!));
    expect(closes.map((c) => c?.code)).toEqual(Array(40).fill(1008));
    expect(peak - before).toBeLessThan(64);
    // A message in a few fragments, as a browser may send, still goes through.
    a.socket.ws.send('{"type":"signal","room":', { fin: false });
    a.socket.ws.send(JSON.stringify(room) + `,"to":${JSON.stringify(b.peerId)},`, { fin: false });
    a.socket.ws.send('"data":{"tag":"fragmented"}}', { fin: true });
    expect((await b.nextSignal('fragmented')).from).toBe(a.peerId);
    expect(instance.alive).toBe(true);
  });
});
