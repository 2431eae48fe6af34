import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Inbound, type DataFrame } from '../../src/cluster/redis/inbound.js';
import { GIVE_UP_MS, Outbound } from '../../src/cluster/redis/outbound.js';
import type { Wire } from '../../src/cluster/redis/wire.js';

/**
 * The bus's delivery guarantee without Redis: an Outbound (instance A) and an Inbound
 * (instance B) joined by a "network" the test controls, which drops, duplicates and
 * reorders batches and confirmations. Whatever it does, every message is delivered once and
 * in order, or reported lost to the sender, never both.
 */

const CH = 'herald:inst:B';
const wire = (n: number): Wire => ({ type: 'deliver', peer: 'p', event: { type: 'direct', from: 'q', payload: { kind: 'json', data: n } } });
const numberOf = (w: Wire) => ((w as { event: { payload: { data: number } } }).event.payload.data);

function pair(drop: (body: string) => boolean) {
  const delivered: number[] = [];
  const lost: number[] = [];
  const inFlight: [string, string][] = []; // [channel, body], delivered when the test says
  const out = new Outbound('A', { publish: (channel, body) => !drop(body) && inFlight.push([channel, body]), lost: (w) => lost.push(numberOf(w)) });
  const inb = new Inbound('B', { deliver: (w) => delivered.push(numberOf(w)), publish: (channel, body) => !drop(body) && inFlight.push([channel, body]), ackRoute: () => ['herald:inst:A'], stalled: () => {} });
  const receive = ([channel, body]: [string, string]) => {
    const f = JSON.parse(body);
    if (f.w) inb.receive(channel, f as DataFrame, Date.now());
    else if (f.k) for (const [ch, e, n, gap] of f.k) out.acked(f.f, ch, e, n, gap === 1, Date.now());
    else if (f.s) for (const [ch, e, below] of f.s) inb.skipped(f.f, ch, e, below);
  };
  let n = 0;
  const send = () => {
    const w = wire(++n);
    inFlight.push([CH, out.frame(CH, 'B', [JSON.stringify(w)], [w], undefined, Date.now())]);
  };
  return { out, inb, delivered, lost, inFlight, receive, send, sent: () => n };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('bus delivery guarantee', () => {
  it('drops, duplicates and reordering: each message once, in order', () => {
    let i = 0;
    const net = pair(() => ++i % 3 === 0); // every third publish (batch or confirmation) vanishes
    for (let round = 0; round < 200; round++) {
      net.send();
      net.send();
      // Deliver what is in flight, reordered, one of them twice.
      const batch = net.inFlight.splice(0).reverse();
      if (batch[0]) batch.push(batch[0]);
      for (const m of batch) net.receive(m);
      vi.advanceTimersByTime(100);
      net.out.tick(Date.now());
      net.inb.tick(Date.now());
      for (const m of net.inFlight.splice(0)) net.receive(m);
    }
    // Let resends finish on a clean network.
    for (let k = 0; k < 40; k++) {
      vi.advanceTimersByTime(250);
      net.out.tick(Date.now());
      net.inb.tick(Date.now());
      for (let j = 0; j < 5; j++) for (const m of net.inFlight.splice(0)) net.receive(m);
    }
    const all = Array.from({ length: net.sent() }, (_, k) => k + 1);
    expect(net.lost).toEqual([]);
    expect(net.delivered).toEqual(all);
    expect(net.out.unconfirmed).toBe(0);
  });

  it('a receiver that hears nothing: the sender gives up after GIVE_UP_MS and reports each message; a late copy is never delivered', () => {
    const net = pair(() => false);
    net.send();
    net.send();
    const late = net.inFlight.splice(0); // held back, as a partition would
    vi.advanceTimersByTime(GIVE_UP_MS + 250);
    net.out.tick(Date.now());
    expect(net.lost).toEqual([1, 2]);
    // The skip reaches the receiver first; the old batches then arrive and are dropped.
    for (const m of net.inFlight.splice(0).filter(([, b]) => b.includes('"s":'))) net.receive(m);
    net.send();
    for (const m of net.inFlight.splice(0)) net.receive(m);
    for (const m of late) net.receive(m);
    expect(net.delivered).toEqual([3]);
  });
});
