import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { sendText } from '../../src/gateway/send.js';

/** A stand-in for a `ws` WebSocket that records what reaches its TCP socket and when. */
function fakeSocket(open = true) {
  const log: string[] = [];
  const socket = { cork: () => log.push('cork'), uncork: () => log.push('uncork') };
  const ws = { OPEN: 1, readyState: open ? 1 : 3, _socket: socket, send: (t: string) => log.push(`send ${t}`) };
  return { ws: ws as unknown as WebSocket, log };
}

const nextTick = () => new Promise((r) => process.nextTick(r));

describe('sendText', () => {
  it("corks a socket once per tick, sends in order, and uncorks on the next tick", async () => {
    const { ws, log } = fakeSocket();
    sendText(ws, 'a');
    sendText(ws, 'b');
    sendText(ws, 'c');
    expect(log).toEqual(['cork', 'send a', 'send b', 'send c']);
    await nextTick();
    expect(log.at(-1)).toBe('uncork');
    sendText(ws, 'd');
    expect(log.slice(-2)).toEqual(['cork', 'send d']);
    await nextTick();
    expect(log.filter((e) => e === 'cork')).toHaveLength(2);
    expect(log.filter((e) => e === 'uncork')).toHaveLength(2);
  });

  it('corks each socket separately', async () => {
    const a = fakeSocket();
    const b = fakeSocket();
    sendText(a.ws, '1');
    sendText(b.ws, '2');
    expect(a.log).toEqual(['cork', 'send 1']);
    expect(b.log).toEqual(['cork', 'send 2']);
    await nextTick();
    expect(a.log.at(-1)).toBe('uncork');
    expect(b.log.at(-1)).toBe('uncork');
  });

  it('sends nothing to a socket that is not open', () => {
    const { ws, log } = fakeSocket(false);
    sendText(ws, 'x');
    expect(log).toEqual([]);
  });
});
