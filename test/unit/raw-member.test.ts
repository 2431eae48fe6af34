import { describe, expect, it } from 'vitest';
import { rawMember } from '../../src/protocol/raw-member.js';

/** rawMember must return text that parses to exactly the parsed member. */
function check(text: string, key = 'data') {
  const raw = rawMember(text, key);
  const parsed = JSON.parse(text)[key];
  if (raw === undefined) return undefined;
  expect(JSON.parse(raw)).toEqual(parsed);
  return raw;
}

describe('rawMember', () => {
  it('finds objects, arrays, strings and primitives wherever the key stands', () => {
    expect(check('{"type":"signal","data":{"description":{"type":"offer","sdp":"v=0\\r\\na=x"}},"to":"b"}')).toBe(
      '{"description":{"type":"offer","sdp":"v=0\\r\\na=x"}}',
    );
    expect(check('{"data":[1,[2,{"a":"]"}]],"x":1}')).toBe('[1,[2,{"a":"]"}]]');
    expect(check('{"to":"x","data":"a \\" } ] , string"}')).toBe('"a \\" } ] , string"');
    expect(check('{"data":12.5e3,"to":"x"}')).toBe('12.5e3');
    expect(check('{"to":"x","data":null}')).toBe('null');
    expect(check('{"to":"x","data":true}')).toBe('true');
    expect(check(' { "to" : "x" , "data" : { "k" : [ ] } } ')).toBe('{ "k" : [ ] }');
  });

  it('is not fooled by the key inside strings or nested objects', () => {
    expect(check('{"room":"\\"data\\":1","x":{"data":2},"data":3}')).toBe('3');
    expect(check('{"a":"\\\\","data":"\\\\\\""}')).toBe('"\\\\\\""');
    expect(check('{"dat":1,"datum":2,"dataX":3,"data":4}')).toBe('4');
  });

  it('skips strings full of escapes (an SDP has \\r\\n on every line) and quotes after backslashes', () => {
    const sdp = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n'.repeat(40) + 'a="q" \\ \\\\"';
    const text = JSON.stringify({ type: 'signal', room: 'r', to: 'b', data: { type: 'offer', sdp } });
    expect(JSON.parse(check(text)!)).toEqual({ type: 'offer', sdp });
    expect(check('{"data":"\\\\","to":"x"}')).toBe('"\\\\"');
    expect(check('{"data":["\\"",{"k":"\\\\"}],"to":"x"}')).toBe('["\\"",{"k":"\\\\"}]');
  });

  it('takes the last of duplicate keys, as JSON.parse does', () => {
    expect(check('{"data":{"first":1},"to":"x","data":{"second":2}}')).toBe('{"second":2}');
    expect(check('{"data":[[[[1]]]],"data":2}')).toBe('2');
  });

  it('gives up when a key written with escapes follows (it could be the key in disguise)', () => {
    expect(rawMember('{"data":1,"d\\u0061ta":2}', 'data')).toBeUndefined();
    expect(check('{"t\\u006f":"x","data":1}')).toBe('1');
  });

  it('returns undefined when the key is absent or escaped', () => {
    expect(rawMember('{"to":"x"}', 'data')).toBeUndefined();
    expect(rawMember('{"d\\u0061ta":1}', 'data')).toBeUndefined();
    expect(rawMember('[1,2]', 'data')).toBeUndefined();
  });

  it('agrees with JSON.parse over a seeded corpus of nested values', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
    const value = (depth: number): unknown => {
      const r = rand();
      if (depth > 3 || r < 0.3) return [null, true, 0, -1.5, 'a"b\\c]}', '', 'ünï', '\u0001'][Math.floor(rand() * 8)];
      if (r < 0.65) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(rand() * 4) }, (_, i) => [['data', 'x', '"', 'to'][i]!, value(depth + 1)]));
    };
    for (let n = 0; n < 500; n++) {
      const obj: Record<string, unknown> = {};
      for (const k of ['type', 'room', 'data', 'to'].sort(() => rand() - 0.5)) obj[k] = value(0);
      const text = rand() < 0.5 ? JSON.stringify(obj) : JSON.stringify(obj, null, 2);
      expect(check(text)).toBeDefined();
    }
  });

  it('with a duplicate key, gives the value JSON.parse kept (the last), or nothing when a later key is escaped', () => {
    expect(check('{"data":[[[[1]]]],"data":"small"}')).toBe('"small"');
    expect(check('{"data":"small","to":"x","data":{"k":1}}')).toBe('{"k":1}');
    expect(rawMember('{"data":1,"d\\u0061ta":2}', 'data')).toBeUndefined();
    expect(rawMember('{"d\\u0061ta":2,"data":1}', 'data')).toBe('1');
  });
});

