import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHerald, type Running } from '../helpers/herald.js';

describe('HTTP probes and fallbacks', () => {
  let server: Running;
  beforeAll(async () => {
    server = await startHerald();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('GET /healthz is 200 while the process is alive', async () => {
    const res = await fetch(`${server.http}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz is 200 when ready', async () => {
    const res = await fetch(`${server.http}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready' });
  });

  it('GET /readyz is 503 with a reason while the cluster is unavailable; /healthz stays 200', async () => {
    const cluster = server.herald.cluster;
    Object.defineProperty(cluster, 'healthy', { value: false, configurable: true, writable: true });
    try {
      const res = await fetch(`${server.http}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ status: 'not-ready', reason: 'cluster unavailable' });
      expect((await fetch(`${server.http}/healthz`)).status).toBe(200);
    } finally {
      Object.defineProperty(cluster, 'healthy', { value: true, configurable: true, writable: true });
    }
    expect((await fetch(`${server.http}/readyz`)).status).toBe(200);
  });

  it('an unknown path is a JSON 404', async () => {
    const res = await fetch(`${server.http}/no/such/thing`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ error: 'not-found', path: '/no/such/thing' });
  });

  it('answers CORS requests', async () => {
    const res = await fetch(`${server.http}/healthz`, { headers: { Origin: 'http://example.test' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeTruthy();
  });

  it('a plain HTTP request to a WebSocket path does not hang or crash the server', async () => {
    const res = await fetch(`${server.http}/webrtc/sender/room`);
    expect([400, 404, 426]).toContain(res.status);
    expect((await fetch(`${server.http}/healthz`)).status).toBe(200);
  });
});
