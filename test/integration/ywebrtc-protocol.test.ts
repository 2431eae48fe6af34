import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReference, TARGETS, YSocket, type YWebrtcTarget } from '../helpers/ywebrtc-targets.js';

/**
 * y-webrtc's signaling protocol, over real `ws` clients, against the reference server
 * (y-webrtc's bin/server.js, spawned as its own process) and against Herald: every test in
 * the first block passes on both. Where they differ on purpose (bad input that crashes the
 * reference, publishing without subscribing, binary frames), the second block says so and
 * checks each side's behaviour.
 */

let seq = 0;
const uid = (p: string) => `${p}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;

describe.each(TARGETS)('y-webrtc protocol on $name', ({ start }) => {
  let target: YWebrtcTarget;
  const open: YSocket[] = [];
  const connect = async () => {
    const s = await YSocket.connect(target.url);
    open.push(s);
    return s;
  };
  /** Sockets subscribed to `topic`, each confirmed subscribed (its own publish came back). */
  const subscribed = async (topic: string, n: number) => {
    const sockets: YSocket[] = [];
    for (let i = 0; i < n; i++) {
      const s = await connect();
      s.subscribe(topic);
      s.publish(topic, { hello: i });
      // Its own publish reaches it: the subscription is in place (earlier ones get it too).
      await s.next((m) => JSON.parse(m).hello === i);
      for (const earlier of sockets) await earlier.next((m) => JSON.parse(m).hello === i);
      sockets.push(s);
    }
    return sockets;
  };

  beforeAll(async () => {
    target = await start();
  });
  afterAll(async () => {
    for (const s of open) s.ws.terminate();
    await target.stop();
  });

  it('ping is answered with exactly {"type":"pong"}, as a text frame', async () => {
    const s = await connect();
    const binary = new Promise<boolean>((resolve) => s.ws.once('message', (_d, isBinary) => resolve(isBinary)));
    s.json({ type: 'ping' });
    expect(await s.next()).toBe('{"type":"pong"}');
    expect(await binary).toBe(false);
  });

  it('a publish reaches every subscriber, the sender included, with clients set and the rest untouched', async () => {
    const topic = uid('t');
    const [a, b, c] = await subscribed(topic, 3);
    const message = { type: 'publish', topic, data: { type: 'signal', to: 'x', from: 'y', signal: { sdp: 'v=0\r\n…', n: [1, 2.5, null] } } };
    a!.json(message);
    const expected = JSON.stringify({ ...message, clients: 3 });
    for (const s of [a!, b!, c!]) expect(await s.next()).toBe(expected);
  });

  it('an existing clients field is overwritten in place, as JSON.stringify of the assigned object gives', async () => {
    const topic = uid('t');
    const [a, b] = await subscribed(topic, 2);
    a!.send(`{"type":"publish","clients":99,"topic":${JSON.stringify(topic)},"x":1}`);
    const expected = `{"type":"publish","clients":2,"topic":${JSON.stringify(topic)},"x":1}`;
    expect(await a!.next()).toBe(expected);
    expect(await b!.next()).toBe(expected);
  });

  it('subscribers of other topics hear nothing', async () => {
    const topic = uid('t');
    const [a] = await subscribed(topic, 1);
    const other = await connect();
    other.subscribe(uid('other'));
    a!.publish(topic, { secret: 1 });
    expect((await a!.nextMessage()).secret).toBe(1);
    expect(await other.drain()).toEqual([]);
  });

  it('one subscribe may name several topics; subscribing twice counts once', async () => {
    const [t1, t2] = [uid('t'), uid('t')];
    const a = await connect();
    a.json({ type: 'subscribe', topics: [t1, t2, t1] });
    a.subscribe(t1);
    a.publish(t1, { n: 1 });
    a.publish(t2, { n: 2 });
    expect(await a.nextMessage()).toMatchObject({ topic: t1, n: 1, clients: 1 });
    expect(await a.nextMessage()).toMatchObject({ topic: t2, n: 2, clients: 1 });
  });

  it('unsubscribe stops delivery and lowers clients', async () => {
    const topic = uid('t');
    const [a, b] = await subscribed(topic, 2);
    b!.json({ type: 'unsubscribe', topics: [topic] });
    // b's unsubscribe is handled before its marker (one socket, in order): then a publishes.
    expect(await b!.drain()).toEqual([]);
    a!.publish(topic, { after: true });
    expect(await a!.nextMessage()).toMatchObject({ after: true, clients: 1 });
    expect(await b!.drain()).toEqual([]);
  });

  it('a closed subscriber is removed from its topics', async () => {
    const topic = uid('t');
    const [a, b] = await subscribed(topic, 2);
    await b!.close();
    // The server sees the close at its own pace: publish until the count shows it (bounded).
    for (let i = 0; ; i++) {
      a!.publish(topic, { i });
      const got = await a!.nextMessage();
      if (got.clients === 1) break;
      expect(got.clients).toBe(2);
      expect(i).toBeLessThan(200);
    }
  });

  it("a sender's publishes arrive in order at every subscriber", async () => {
    const topic = uid('t');
    const [a, b] = await subscribed(topic, 2);
    for (let i = 0; i < 100; i++) a!.publish(topic, { i });
    for (const s of [a!, b!]) {
      for (let i = 0; i < 100; i++) expect((await s.nextMessage()).i).toBe(i);
    }
  });

  it('unknown types, JSON that is not an object and messages missing their fields are ignored; the socket keeps working', async () => {
    const a = await connect();
    for (const text of ['{"type":"nope"}', '{}', '5', '"str"', 'null', '[]', '[{"type":"ping"}]', '{"type":"publish"}', '{"type":"publish","topic":""}', '{"type":"subscribe"}', '{"type":"unsubscribe"}', '{"type":"subscribe","topics":[5,null,{}]}']) {
      a.send(text);
    }
    expect(await a.drain()).toEqual([]);
    a.json({ type: 'ping' });
    expect(await a.next()).toBe('{"type":"pong"}');
  });
});

describe('y-webrtc: where Herald differs from the reference, on purpose (docs/y-webrtc.md)', () => {
  let herald: YWebrtcTarget;
  beforeAll(async () => {
    const { startHeraldTarget } = await import('../helpers/ywebrtc-targets.js');
    herald = await startHeraldTarget();
  });
  afterAll(async () => {
    await herald.stop();
  });

  /** Bad input that ends the reference server's process (it has no error handler on 'message'). */
  const CRASHERS = ['not json', '{"type":"subscribe","topics":"abc"}', '{"type":"subscribe","topics":{"a":1}}', '{"type":"unsubscribe","topics":7}'];

  it.each(CRASHERS)('the reference crashes on %s', async (text) => {
    const ref = await startReference();
    try {
      const s = await YSocket.connect(ref.url);
      s.send(text);
      expect(await ref.exited).not.toBe(0);
    } finally {
      await ref.stop();
    }
  });

  it.each(CRASHERS)('Herald ignores %s and the sender and other peers keep working', async (text) => {
    const topic = uid('t');
    const a = await YSocket.connect(herald.url);
    const b = await YSocket.connect(herald.url);
    for (const s of [a, b]) s.subscribe(topic);
    for (const s of [a, b]) expect(await s.drain()).toEqual([]); // both subscribed
    a.send(text);
    a.publish(topic, { ok: 1 });
    expect(await b.nextMessage()).toMatchObject({ ok: 1, clients: 2 });
    expect(await a.nextMessage()).toMatchObject({ ok: 1, clients: 2 });
    a.ws.terminate();
    b.ws.terminate();
  });

  it('a publish by a non-subscriber: the reference delivers it, Herald drops it', async () => {
    const ref = await startReference();
    try {
      for (const target of [ref, herald]) {
        const topic = uid('t');
        const sub = await YSocket.connect(target.url);
        sub.subscribe(topic);
        expect(await sub.drain()).toEqual([]);
        const outsider = await YSocket.connect(target.url);
        outsider.publish(topic, { from: 'outside' });
        outsider.json({ type: 'ping' });
        expect(await outsider.next()).toBe('{"type":"pong"}'); // the publish was handled before
        const seen = await sub.drain();
        if (target === ref) expect(seen).toEqual([{ type: 'publish', topic, from: 'outside', clients: 1 }]);
        else expect(seen).toEqual([]);
        sub.ws.terminate();
        outsider.ws.terminate();
      }
    } finally {
      await ref.stop();
    }
  });

  it('a binary frame: the reference parses it as JSON, Herald drops it', async () => {
    const ref = await startReference();
    try {
      for (const target of [ref, herald]) {
        const topic = uid('t');
        const a = await YSocket.connect(target.url);
        a.subscribe(topic);
        expect(await a.drain()).toEqual([]);
        a.send(Buffer.from(JSON.stringify({ type: 'publish', topic, bin: 1 })));
        const seen = await a.drain();
        if (target === ref) expect(seen).toEqual([{ type: 'publish', topic, bin: 1, clients: 1 }]);
        else expect(seen).toEqual([]);
        a.ws.terminate();
      }
    } finally {
      await ref.stop();
    }
  });
});
