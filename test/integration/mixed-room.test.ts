import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHerald, type Running } from '../helpers/herald.js';
import { JsonClient, uid } from '../helpers/json-client.js';
import { TestSocket } from '../helpers/socket.js';

/**
 * One room, two protocols (docs/protocol.md §3): a seed sender is the room's
 * broadcaster and a seed reader a viewer, and their offer/answer/candid frames are
 * translated to and from the JSON protocol's `{description}` / `{candidate}` signal data.
 */

const SDP_OFFER = 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n';
const SDP_ANSWER = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n';
const CANDIDATE = { candidate: 'candidate:842163049 1 udp 1677729535 192.0.2.7 54321 typ srflx raddr 0.0.0.0 rport 0 generation 0', sdpMid: '0', sdpMLineIndex: 0, usernameFragment: 'abcd' };
const CANDIDATE2 = { candidate: 'candidate:1 1 UDP 2122252543 10.0.0.2 40000 typ host', sdpMid: '0', sdpMLineIndex: 0 };

describe('mixed room: seed and JSON peers', () => {
  let server: Running;
  const sockets: TestSocket[] = [];
  const seed = async (path: string) => {
    const s = await TestSocket.open(server.ws + path);
    sockets.push(s);
    return s;
  };
  const json = async () => {
    const c = await JsonClient.connect(server.ws);
    sockets.push(c.socket);
    return c;
  };

  beforeAll(async () => {
    server = await startHerald();
  });
  afterAll(async () => {
    for (const s of sockets) s.ws.terminate();
    await server.stop();
  });

  it('a seed sender and a JSON viewer negotiate: join, offer, answer and candidates both ways', async () => {
    const room = uid('mix');
    const senderId = `sender/${room}`;
    const viewer = await json();
    // The viewer arrives first and waits; the sender is told about it when it connects.
    expect((await viewer.join(room, 'viewer')).members).toEqual([]);
    const sender = await seed(`/webrtc/sender/${room}`);
    expect(await sender.next()).toBe(`join|${viewer.peerId}`);
    expect(await viewer.nextJson('peer-joined')).toEqual({ type: 'peer-joined', room, peer: { id: senderId, role: 'broadcaster' } });

    sender.send(`offer|${viewer.peerId}|${SDP_OFFER}`);
    expect(await viewer.nextJson('signal')).toEqual({ type: 'signal', room, from: senderId, data: { description: { type: 'offer', sdp: SDP_OFFER } } });
    sender.send(`candid|${viewer.peerId}|${JSON.stringify(CANDIDATE)}`);
    expect(await viewer.nextJson('signal')).toEqual({ type: 'signal', room, from: senderId, data: { candidate: CANDIDATE } });

    await viewer.signal(room, senderId, { description: { type: 'answer', sdp: SDP_ANSWER } });
    expect(await sender.next()).toBe(`answer|${viewer.peerId}|${SDP_ANSWER}`);
    await viewer.signal(room, senderId, { candidate: CANDIDATE2 });
    const candid = await sender.next();
    expect(candid.startsWith(`candid|${viewer.peerId}|`)).toBe(true);
    expect(JSON.parse(candid.slice(`candid|${viewer.peerId}|`.length))).toEqual(CANDIDATE2);

    // Other seed frame types and other JSON data survive the trip too.
    sender.send(`bye|${viewer.peerId}|a|b`);
    expect((await viewer.nextJson('signal')).data).toEqual({ seed: { type: 'bye', value: 'a|b' } });
    await viewer.signal(room, senderId, { seed: { type: 'custom', value: 'x|y' } });
    expect(await sender.next()).toBe(`custom|${viewer.peerId}|x|y`);
    await viewer.signal(room, senderId, { hello: 'world' });
    expect(await sender.next()).toBe(`data|${viewer.peerId}|{"hello":"world"}`);

    // The JSON viewer leaves: the sender hears `leave|<id>`; the sender closes: the viewer hears peer-left.
    await viewer.leave(room);
    expect(await sender.next()).toBe(`leave|${viewer.peerId}`);
    await viewer.join(room, 'viewer');
    expect(await sender.next()).toBe(`join|${viewer.peerId}`);
    await sender.close();
    expect(await viewer.nextJson('peer-left')).toEqual({ type: 'peer-left', room, peer: { id: senderId, role: 'broadcaster' }, reason: 'closed' });
  });

  it('a JSON viewer joining a live seed sender sees it in its join ack', async () => {
    const room = uid('mix');
    const sender = await seed(`/webrtc/sender/${room}`);
    // The sender's own join is async: a first viewer proves it has happened.
    const first = await json();
    await first.join(room, 'viewer');
    expect(await sender.next()).toBe(`join|${first.peerId}`);
    const viewer = await json();
    expect((await viewer.join(room, 'viewer')).members).toEqual([{ id: `sender/${room}`, role: 'broadcaster' }]);
    expect(await sender.next()).toBe(`join|${viewer.peerId}`);
    // A JSON broadcaster cannot take the seed sender's room.
    const rival = await json();
    await expect(rival.join(room, 'broadcaster')).rejects.toMatchObject({ code: 'conflict' });
  });

  it('a JSON broadcaster and seed readers negotiate, and the readers get leaveline when it leaves', async () => {
    const room = uid('mix');
    const bc = await json();
    await bc.join(room, 'broadcaster');
    const [u1, u2] = [uid('reader'), uid('reader')];
    const r1 = await seed(`/webrtc/reader/${u1}`);
    const r2 = await seed(`/webrtc/reader/${u2}`);
    r1.send(`join|${room}`);
    expect(await bc.nextJson('peer-joined')).toEqual({ type: 'peer-joined', room, peer: { id: u1, role: 'viewer' } });
    r2.send(`join|${room}`);
    expect(await bc.nextJson('peer-joined')).toEqual({ type: 'peer-joined', room, peer: { id: u2, role: 'viewer' } });

    for (const [r, u] of [[r1, u1], [r2, u2]] as const) {
      await bc.signal(room, u, { description: { type: 'offer', sdp: SDP_OFFER } });
      expect(await r.next()).toBe(`offer|${room}|${SDP_OFFER}`);
      await bc.signal(room, u, { candidate: CANDIDATE });
      const candid = await r.next();
      expect(candid.startsWith(`candid|${room}|`)).toBe(true);
      expect(JSON.parse(candid.slice(`candid|${room}|`.length))).toEqual(CANDIDATE);

      r.send(`answer|${room}|${SDP_ANSWER}`);
      expect(await bc.nextJson('signal')).toEqual({ type: 'signal', room, from: u, data: { description: { type: 'answer', sdp: SDP_ANSWER } } });
      r.send(`candid|${room}|${JSON.stringify(CANDIDATE2)}`);
      expect(await bc.nextJson('signal')).toEqual({ type: 'signal', room, from: u, data: { candidate: CANDIDATE2 } });
    }

    // A reader leaving: the JSON broadcaster hears peer-left.
    await r2.close();
    expect(await bc.nextJson('peer-left')).toEqual({ type: 'peer-left', room, peer: { id: u2, role: 'viewer' }, reason: 'closed' });

    await bc.leave(room);
    expect(await r1.next()).toBe('leaveline');
    // r1 is unbound: signalling the room again is refused until it joins again.
    r1.send(`answer|${room}|late`);
    expect(await r1.next()).toMatch(/^error\|not-joined\|/);
    await bc.join(room, 'broadcaster');
    r1.send(`join|${room}`);
    expect(await bc.nextJson('peer-joined')).toEqual({ type: 'peer-joined', room, peer: { id: u1, role: 'viewer' } });
  });

  it('a JSON broadcaster closing its socket (1000) sends readers leaveline at once', async () => {
    const room = uid('mix');
    const bc = await json();
    await bc.join(room, 'broadcaster');
    const u = uid('reader');
    const r = await seed(`/webrtc/reader/${u}`);
    r.send(`join|${room}`);
    await bc.nextJson('peer-joined');
    await bc.close(1000);
    expect(await r.next()).toBe('leaveline');
  });
});
