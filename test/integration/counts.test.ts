import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonClient } from '../helpers/json-client.js';
import { startHerald, type Running } from '../helpers/herald.js';
import { TestSocket } from '../helpers/socket.js';

describe('room counts push', () => {
  let server: Running;
  beforeAll(async () => {
    server = await startHerald({ countsIntervalMs: 50 });
  });
  afterAll(() => server.stop());

  it('tells every JSON member the room size, coalesced, as viewers come and go', async () => {
    const b = await JsonClient.connect(server.ws);
    await b.join('counted', 'broadcaster');
    const viewers = await Promise.all([1, 2, 3].map(() => JsonClient.connect(server.ws)));
    for (const v of viewers) await v.join('counted', 'viewer');
    // A seed reader counts too (seed clients themselves never receive counts).
    const reader = await TestSocket.open(`${server.ws}/webrtc/reader/counted-reader`);
    reader.send('join|counted');
    const full = (m: any) => m.room === 'counted' && m.counts.viewers === 4;
    const seen = await b.nextWhere('counts', full);
    expect(seen.counts).toEqual({ broadcaster: true, viewers: 4, peers: 0 });
    await viewers[2]!.nextWhere('counts', full);

    await viewers[0]!.close(1000);
    const after = await b.nextWhere('counts', (m) => m.counts.viewers === 3);
    expect(after.counts).toEqual({ broadcaster: true, viewers: 3, peers: 0 });
    await viewers[1]!.nextWhere('counts', (m) => m.counts.viewers === 3);
    expect(reader.received.some((m) => m.includes('counts'))).toBe(false);
    reader.ws.close();
  });
});
