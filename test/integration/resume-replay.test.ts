import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Signaling } from '../../client/signaling.js';
import { startHerald, type Running } from '../helpers/herald.js';
import { Instance, startInstances, waitFor } from '../helpers/instances.js';
import { JsonClient } from '../helpers/json-client.js';
import { BlackHoleProxy } from '../helpers/proxy.js';
import { TestRedis } from '../helpers/redis.js';

/**
 * Nothing lost across a drop (docs/protocol.md "Sequence numbers and acknowledgements"): the
 * SDK's connection goes through a proxy that black-holes it mid-stream, so whatever the
 * server writes meanwhile vanishes. The server has not noticed (its heartbeat is a minute
 * away); the SDK's ping notices, it resumes (on the same instance, or on another one), and
 * the server replays every push after the SDK's lastSeq: the viewer gets every signal once,
 * in order.
 */

/** Every frame each SDK socket received, per socket, in order. */
const frames: { seq?: number; type: string; data?: { i?: number } }[][] = [];
class RecordingWebSocket extends WebSocket {
  constructor(url: string) {
    super(url);
    const log: (typeof frames)[number] = [];
    frames.push(log);
    this.on('message', (data) => log.push(JSON.parse(data.toString())));
  }
}

interface Counts {
  sent: number;
  blackHoled: number;
  replayed: number;
  duplicates: number;
}

/**
 * Streams signals from `bc` to the SDK viewer, black-holes the viewer's connection mid-stream,
 * keeps streaming, and checks what arrived once the SDK has resumed.
 */
async function streamAcrossDrop(bc: JsonClient, viewer: Signaling, viewerId: string, room: string, proxy: BlackHoleProxy, onBlackHole: () => void): Promise<Counts> {
  const first = frames.length - 1;
  const got: number[] = [];
  viewer.on('signal', (m) => got.push((m.data as { i: number }).i));
  let i = 0;
  const send = (n: number) => {
    for (const end = i + n; i < end; i++) bc.signalNoAck(room, viewerId, { i });
  };
  send(100);
  await waitFor('the first signals to arrive', () => got.length >= 50);
  const resumed = viewer.once('welcome');
  expect(proxy.blackHole()).toBe(1);
  onBlackHole();
  send(100); // written into the dead socket: the server has not noticed
  const welcome = await resumed;
  expect(welcome.resumed).toBe(true);
  const sentBeforeResume = i;
  send(50);
  await waitFor('every signal to arrive', () => got.length >= i, 20_000);
  // Once each, in order.
  expect(got).toEqual(Array.from({ length: i }, (_, k) => k));

  const before = frames[first]!.filter((f) => f.type === 'signal');
  const after = frames.slice(first + 1).flat().filter((f) => f.type === 'signal');
  const seqs = [...before, ...after].map((f) => f.seq!);
  return {
    sent: i,
    blackHoled: sentBeforeResume - before.length,
    replayed: after.filter((f) => f.data!.i! < sentBeforeResume).length,
    duplicates: seqs.length - new Set(seqs).size,
  };
}

beforeAll(() => {
  (globalThis as any).WebSocket = RecordingWebSocket;
});

describe('lossless resume through a black-holed connection', () => {
  let server: Running;
  let proxy: BlackHoleProxy;
  beforeAll(async () => {
    server = await startHerald({ heartbeatMs: 60_000, resumeGraceMs: 30_000, rateBurst: 100_000, ratePerSecond: 100_000 });
    proxy = await BlackHoleProxy.start(server.port);
  });
  afterAll(async () => {
    await proxy.stop();
    await server.stop();
  });

  it('on the same instance: every push written into the dead socket is replayed once, in order', async () => {
    const viewer = new Signaling({ url: `ws://127.0.0.1:${proxy.port}/ws`, pingIntervalMs: 300, backoff: { initialMs: 50, maxMs: 200 } });
    const me = await viewer.connect();
    await viewer.join('replay', 'viewer');
    const bc = await JsonClient.connect(server.ws);
    await bc.join('replay', 'broadcaster');
    const counts = await streamAcrossDrop(bc, viewer, me.peerId, 'replay', proxy, () => {});
    console.log(`replay, same instance: ${JSON.stringify(counts)}`);
    expect(counts.blackHoled).toBeGreaterThan(0);
    expect(counts.replayed).toBe(counts.blackHoled);
    expect(counts.duplicates).toBe(0);
    viewer.close();
    await bc.close();
  });

  it('acknowledgements let the server forget: a resume replays only what was not acknowledged', async () => {
    const viewer = new Signaling({ url: `ws://127.0.0.1:${proxy.port}/ws`, pingIntervalMs: 300, backoff: { initialMs: 50, maxMs: 200 } });
    const me = await viewer.connect();
    await viewer.join('acked', 'viewer');
    const bc = await JsonClient.connect(server.ws);
    await bc.join('acked', 'broadcaster');
    const got: number[] = [];
    viewer.on('signal', (m) => got.push((m.data as { i: number }).i));
    for (let i = 0; i < 40; i++) bc.signalNoAck('acked', me.peerId, { i });
    await waitFor('all 40 to arrive', () => got.length === 40);
    const socket = frames.length - 1;
    // The SDK acknowledges within 100 ms of the last push it got (signals, peer-joined, counts).
    const lastSeq = () => Math.max(...frames[socket]!.map((f) => f.seq ?? 0));
    // The server drops what is acknowledged: nothing is kept for this peer once the ack is in.
    const kept = () => (server.herald.hub as any).peers.get(me.peerId).unacked.length as number;
    await waitFor('the server to drop what was acknowledged', () => lastSeq() >= 40 && kept() === 0);
    const resumed = viewer.once('welcome');
    proxy.blackHole();
    expect((await resumed).resumed).toBe(true);
    // Nothing was lost, so nothing is replayed.
    bc.signalNoAck('acked', me.peerId, { i: 40 });
    await waitFor('the next one', () => got.length === 41);
    expect(frames.slice(socket + 1).flat().filter((f) => f.type === 'signal').map((f) => f.data!.i)).toEqual([40]);
    viewer.close();
    await bc.close();
  });
});

describe('acknowledgements that make no sense get a typed error', () => {
  let server: Running;
  beforeAll(async () => {
    server = await startHerald();
  });
  afterAll(() => server.stop());

  it('before hello, without lastSeq in hello, of a number never sent, or malformed: bad-request; the connection goes on', async () => {
    const early = await JsonClient.open(server.ws);
    early.send({ type: 'ack', seq: 1 });
    expect(await early.nextJson('error')).toMatchObject({ code: 'bad-request' });

    const plain = await JsonClient.connect(server.ws); // no lastSeq: pushes are not numbered
    plain.send({ type: 'ack', seq: 0 });
    expect(await plain.nextJson('error')).toMatchObject({ code: 'bad-request' });

    const acking = await JsonClient.connect(server.ws, { lastSeq: 0 });
    await acking.join('acks', 'peer');
    acking.send({ type: 'ack', seq: 5 }); // nothing numbered 5 was sent
    expect((await acking.nextJson('error')).message).toContain('no push with that number');
    for (const bad of [{ type: 'ack', seq: -1 }, { type: 'ack', seq: 1.5 }, { type: 'ack' }, { type: 'ack', seq: 0, extra: 1 }]) {
      acking.send(bad);
      expect(await acking.nextJson('error')).toMatchObject({ code: 'bad-request' });
    }
    // Still serving: a peer joining is pushed with a number, and acknowledging it is fine.
    const other = await JsonClient.connect(server.ws);
    await other.join('acks', 'peer');
    const joined = await acking.nextJson('peer-joined');
    expect(joined.seq).toBeGreaterThan(0);
    acking.send({ type: 'ack', seq: joined.seq });
    expect(await acking.request({ type: 'ping' })).toMatchObject({ type: 'ack' });
    expect(acking.pendingJson().filter((m) => m.type === 'error')).toEqual([]);
    for (const c of [early, plain, acking, other]) await c.close();
  });
});

describe('lossless resume on another instance', () => {
  let redis: TestRedis;
  let A: Instance;
  let B: Instance;
  let proxy: BlackHoleProxy;
  beforeAll(async () => {
    redis = await TestRedis.start();
    [A, B] = await startInstances(2, {
      redisUrl: redis.url,
      env: { HERALD_HEARTBEAT_MS: '60000', HERALD_RESUME_GRACE_MS: '30000', HERALD_RATE_BURST: '100000', HERALD_RATE_PER_SECOND: '100000' },
    });
    proxy = await BlackHoleProxy.start(A!.port);
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([A?.kill(), B?.kill()]);
    await redis?.stop();
  });

  it('a viewer black-holed on A resumes on B: what A wrote into the dead socket is handed over and replayed once, in order', async () => {
    const viewer = new Signaling({ url: `ws://127.0.0.1:${proxy.port}/ws`, pingIntervalMs: 300, backoff: { initialMs: 50, maxMs: 200 } });
    const me = await viewer.connect();
    await viewer.join('replay-x', 'viewer');
    const bc = await JsonClient.connect(B.ws);
    await bc.join('replay-x', 'broadcaster');
    // The reconnect lands on B (a load balancer choosing another instance).
    const counts = await streamAcrossDrop(bc, viewer, me.peerId, 'replay-x', proxy, () => (proxy.target = B.port));
    console.log(`replay, across instances: ${JSON.stringify(counts)}`);
    expect(counts.blackHoled).toBeGreaterThan(0);
    expect(counts.replayed).toBe(counts.blackHoled);
    expect(counts.duplicates).toBe(0);
    viewer.close();
    await bc.close();
  }, 60_000);
});
