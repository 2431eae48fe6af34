import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startInstances, waitFor, type Instance } from '../helpers/instances.js';
import { InstanceClients, uniqueIds } from '../helpers/instance-clients.js';
import { TestRedis } from '../helpers/redis.js';

/**
 * Cross-instance signals are delivered exactly once and in order, or their sender is told
 * (src/cluster/redis/outbound.ts, inbound.ts). A peer on A sends numbered signals to a peer
 * on B at a few hundred a second for 15 s while the test kills every pub/sub connection
 * (`CLIENT KILL TYPE pubsub`, as a failover or a proxy restart does) every 2 s. Redis drops
 * what is published to a subscriber that is reconnecting; no signal may vanish unreported.
 */

const SECONDS = 15;
const PER_20MS = 6; // 300 a second
/** The per-connection message rate allows the test's 300 a second. */
const FAST = { HERALD_RATE_PER_SECOND: '2000', HERALD_RATE_BURST: '2000' };
const KILL_EVERY_MS = Number(process.env.KILL_EVERY_MS ?? 2000);

let redis: TestRedis;
let admin: Redis;
const instances: Instance[] = [];
const clients = new InstanceClients();
const uniq = uniqueIds();

beforeAll(async () => {
  redis = await TestRedis.start();
  admin = redis.client();
});

afterEach(async () => {
  clients.closeAll();
  await Promise.all(instances.splice(0).map((i) => i.kill()));
});

afterAll(async () => {
  admin?.disconnect();
  await redis?.stop();
});

/** Every pub/sub connection, as a failover or a proxy restart drops them. */
const killAllSubscribers = () => admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');

/** Only the subscriber of the instance holding `peerId` (the sender's instance keeps publishing meanwhile). */
async function killSubscriberOf(room: string, peerId: string): Promise<unknown> {
  const member = JSON.parse((await admin.hget(`herald:{room:${room}}:members`, peerId))!) as { instanceId: string };
  const list = String(await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
  const line = list.split('\n').find((l) => l.includes(` name=herald-sub:${member.instanceId} `));
  const id = / id=?(\d+)/.exec(` ${line ?? ''}`)?.[1];
  if (!id) throw new Error(`no subscriber connection for ${member.instanceId} in ${list}`);
  return admin.call('CLIENT', 'KILL', 'ID', id);
}

/** Sends `total` messages at PER_20MS per 20 ms while `kill` runs every KILL_EVERY_MS; resolves with the kill count. */
async function sendUnderKills(total: number, send: (n: number) => void, kill: () => Promise<unknown> = killAllSubscribers): Promise<number> {
  let kills = 0;
  const killer = setInterval(() => {
    kills++;
    void kill().catch(() => {});
  }, KILL_EVERY_MS);
  try {
    for (let n = 1; n <= total; n++) {
      send(n);
      if (n % PER_20MS === 0) await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    clearInterval(killer);
  }
  return kills;
}

interface Counts {
  sent: number;
  delivered: number;
  reported: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  deliveredAndReported: number;
}

function count(sent: number, deliveredSeq: number[], reported: Set<number> | number): Counts {
  const seen = new Set<number>();
  let duplicated = 0;
  let outOfOrder = 0;
  let last = 0;
  for (const n of deliveredSeq) {
    if (seen.has(n)) duplicated++;
    seen.add(n);
    if (n < last) outOfOrder++;
    last = Math.max(last, n);
  }
  if (typeof reported === 'number') {
    return { sent, delivered: seen.size, reported, lost: sent - seen.size - reported, duplicated, outOfOrder, deliveredAndReported: Math.max(0, seen.size + reported - sent) };
  }
  let lost = 0;
  let both = 0;
  for (let n = 1; n <= sent; n++) {
    if (!seen.has(n) && !reported.has(n)) lost++;
    if (seen.has(n) && reported.has(n)) both++;
  }
  return { sent, delivered: seen.size, reported: reported.size, lost, duplicated, outOfOrder, deliveredAndReported: both };
}

async function jsonSoak(which: 'all' | 'receiver'): Promise<void> {
  const [A, B] = await startInstances(2, { redisUrl: redis.url, env: FAST });
  instances.push(A!, B!);
  const room = uniq('once');
  const from = await clients.json(A!, { peerId: uniq('from') });
  await from.join(room, 'peer');
  const to = await clients.json(B!, { peerId: uniq('to') });
  await to.join(room, 'peer');
  await from.nextJson('peer-joined');
  await from.signal(room, to.peerId, { tag: 'warm' });
  await to.nextSignal('warm');

  const total = SECONDS * 50 * PER_20MS;
  const base = 1_000_000; // ids apart from the helper's own requests
  const delivered = () => to.socket.received.map((t) => JSON.parse(t)).filter((m) => m.type === 'signal' && m.data?.tag === 'n').map((m) => m.data.n as number);
  const kills = await sendUnderKills(
    total,
    (n) => from.send({ type: 'signal', id: base + n, room, to: to.peerId, data: { tag: 'n', n } }),
    which === 'all' ? killAllSubscribers : () => killSubscriberOf(room, to.peerId),
  );

  // Every request gets exactly one answer: an ack once B has it, or an error.
  const answers = () => from.socket.received.map((t) => JSON.parse(t)).filter((m) => (m.type === 'ack' || m.type === 'error') && m.id > base);
  await waitFor('an answer to every signal', () => answers().length >= total, 30_000, 100).catch((err) => {
    const got = new Set(answers().map((m) => m.id - base));
    const missing = [];
    for (let n = 1; n <= total; n++) if (!got.has(n)) missing.push(n);
    const d = new Set(delivered());
    throw new Error(`${err.message}: ${missing.length} unanswered (first ${missing.slice(0, 10)}; delivered of those: ${missing.filter((n) => d.has(n)).length}); A: ${A!.output.slice(-1500)}\nB: ${B!.output.slice(-1500)}`);
  });
  const acked = new Set<number>();
  const reported = new Set<number>();
  const other: unknown[] = [];
  for (const m of answers()) {
    if (m.type === 'ack') acked.add(m.id - base);
    else if (m.code === 'unavailable') reported.add(m.id - base);
    else other.push(m);
  }
  // Acks follow delivery on B's socket by at most a hop: wait for B to have every acked one.
  await waitFor('every acknowledged signal at B', () => {
    const d = new Set(delivered());
    return [...acked].every((n) => d.has(n));
  }, 10_000, 100);
  const counts = count(total, delivered(), reported);
  console.log(`JSON, ${kills} kills of ${which === 'all' ? 'every subscriber' : "the receiver's subscriber"}: ${JSON.stringify({ ...counts, acked: acked.size })}`);
  expect(other).toEqual([]);
  expect(answers().length).toBe(total); // one answer per request, never two
  expect(kills).toBeGreaterThanOrEqual(SECONDS / (KILL_EVERY_MS / 1000) - 1);
  expect(counts.lost).toBe(0);
  expect(counts.duplicated).toBe(0);
  expect(counts.outOfOrder).toBe(0);
  expect(counts.deliveredAndReported).toBe(0);
  expect(counts.delivered).toBe(acked.size);
  expect(counts.delivered).toBeGreaterThan(total / 2);
}

describe('cross-instance signals while pub/sub connections are killed every 2 s', () => {
  it('JSON, every subscriber killed: every signal with an id is delivered once and in order, or answered error unavailable', () => jsonSoak('all'), 120_000);

  it("JSON, only the receiving instance's subscriber killed (the sender keeps publishing into the gap): the same", () => jsonSoak('receiver'), 120_000);

  it('seed: every offer is delivered once and in order, or answered error|unavailable', async () => {
    const [A, B] = await startInstances(2, { redisUrl: redis.url, env: FAST });
    instances.push(A!, B!);
    const room = uniq('seed-once');
    const readerId = uniq('reader');
    const sender = await clients.sender(A!, room);
    const reader = await clients.reader(B!, readerId);
    reader.send(`join|${room}`);
    await sender.next((m) => m === `join|${readerId}`, 10_000);
    sender.send(`offer|${readerId}|warm`);
    await reader.next((m) => m === `offer|${room}|warm`, 10_000);

    const total = SECONDS * 50 * PER_20MS;
    const kills = await sendUnderKills(total, (n) => sender.send(`offer|${readerId}|${n}`));

    const delivered = () => reader.received.filter((m) => m.startsWith(`offer|${room}|`) && !m.endsWith('|warm')).map((m) => Number(m.slice(m.lastIndexOf('|') + 1)));
    const reported = () => sender.received.filter((m) => m.startsWith('error|unavailable|')).length;
    const others = () => sender.received.filter((m) => m.startsWith('error|') && !m.startsWith('error|unavailable|'));
    // Each offer ends delivered or reported; a report comes at most 5 s after the last send.
    await waitFor('every offer delivered or reported', () => new Set(delivered()).size + reported() >= total, 30_000, 100);
    const counts = count(total, delivered(), reported());
    console.log(`seed, ${kills} pub/sub kills: ${JSON.stringify(counts)}`);
    expect(others()).toEqual([]);
    expect(counts.lost).toBe(0);
    expect(counts.duplicated).toBe(0);
    expect(counts.outOfOrder).toBe(0);
    expect(counts.deliveredAndReported).toBe(0);
    expect(counts.delivered).toBeGreaterThan(total / 2);
  }, 120_000);
});
