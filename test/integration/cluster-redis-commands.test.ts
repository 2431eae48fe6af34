import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Instance, startInstances } from '../helpers/instances.js';
import { TestRedis } from '../helpers/redis.js';
import { TestSocket } from '../helpers/socket.js';

/**
 * Cross-instance delivery (docs/architecture.md), counted: Redis MONITOR sees every command the instances issue.
 * A same-instance relay must issue none; a cross-instance relay exactly one PUBLISH, to the
 * receiving instance's channel only. The liveness tick (refresh + poll) runs on its own
 * schedule and is left out of the count by name.
 */

let redis: TestRedis;
let A: Instance;
let B: Instance;
let monitor: Redis;
let control: Redis;
const seen: string[][] = [];
const sockets: TestSocket[] = [];

/** The liveness tick's commands (every second) and the console's status report (every 2 s), whatever the traffic. */
function periodic(args: string[]): boolean {
  const [name, key = ''] = [args[0]!.toLowerCase(), args[1] ?? ''];
  if (name === 'set' && key.endsWith(':alive')) return true;
  if (name === 'set' && key.endsWith(':report')) return true;
  if (name === 'zadd' && key === 'herald:reporters') return true;
  if (name === 'smembers' && key === 'herald:instances') return true;
  if (name === 'exists' && key.endsWith(':alive')) return true;
  // The numbered bus's receipts (src/cluster/redis/inbound.ts): cumulative, one per stream per
  // 20 ms whatever the number of messages, so one confirming an earlier batch may fall in a window.
  if (name === 'publish' && (args[2] ?? '').startsWith('{"f":') && (args[2] ?? '').includes('"k":')) return true;
  return false;
}

/** Runs `work` and returns the non-periodic commands issued meanwhile, fenced by ECHOs. */
async function commandsDuring(work: () => Promise<void>): Promise<string[][]> {
  const tag = `fence-${Math.random().toString(36).slice(2)}`;
  const fenced = async (word: string) => {
    await control.echo(`${tag}-${word}`);
    // MONITOR streams asynchronously: wait until our own fence shows up.
    const deadline = Date.now() + 5000;
    while (!seen.some((a) => a[0]!.toLowerCase() === 'echo' && a[1] === `${tag}-${word}`)) {
      if (Date.now() > deadline) throw new Error('monitor did not see the fence');
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await fenced('start');
  await work();
  await fenced('end');
  const start = seen.findIndex((a) => a[1] === `${tag}-start`);
  const end = seen.findIndex((a) => a[1] === `${tag}-end`);
  return seen.slice(start + 1, end).filter((a) => !periodic(a));
}

beforeAll(async () => {
  redis = await TestRedis.start();
  [A, B] = await startInstances(2, { redisUrl: redis.url });
  control = redis.client();
  monitor = await redis.client().monitor();
  monitor.on('monitor', (_time: string, args: string[]) => seen.push(args.map(String)));
});

afterAll(async () => {
  for (const s of sockets) s.ws.terminate();
  monitor?.disconnect();
  control?.disconnect();
  await Promise.all([A?.kill(), B?.kill()]);
  await redis?.stop();
});

async function open(url: string): Promise<TestSocket> {
  const s = await TestSocket.open(url);
  sockets.push(s);
  return s;
}

describe('Redis commands per relayed message', () => {
  it('same-instance relay: zero commands; cross-instance relay: exactly one PUBLISH to that instance', async () => {
    const room = 'counted';
    const s = await open(`${A.ws}/webrtc/sender/${room}`);
    const near = await open(`${A.ws}/webrtc/reader/near`);
    near.send(`join|${room}`);
    await s.next((m) => m === 'join|near');
    const far = await open(`${B.ws}/webrtc/reader/far`);
    far.send(`join|${room}`);
    await s.next((m) => m === 'join|far');

    const local = await commandsDuring(async () => {
      for (let i = 0; i < 20; i++) {
        s.send(`candid|near|local-${i}`);
        expect(await near.next()).toBe(`candid|${room}|local-${i}`);
        near.send(`candid|${room}|local-back-${i}`);
        expect(await s.next()).toBe(`candid|near|local-back-${i}`);
      }
    });
    expect(local).toEqual([]);

    const cross = await commandsDuring(async () => {
      s.send('offer|far|cross-payload');
      expect(await far.next()).toBe(`offer|${room}|cross-payload`);
    });
    expect(cross).toHaveLength(1);
    expect(cross[0]![0]!.toLowerCase()).toBe('publish');
    expect(cross[0]![1]).toMatch(/^herald:inst:inst-/);
    expect(cross[0]![2]).toContain('cross-payload');

    const back = await commandsDuring(async () => {
      far.send(`answer|${room}|back-payload`);
      expect(await s.next()).toBe('answer|far|back-payload');
    });
    expect(back).toHaveLength(1);
    expect(back[0]![0]!.toLowerCase()).toBe('publish');
    expect(back[0]![1]).not.toBe(cross[0]![1]); // A's channel this time, not B's
  });
});
