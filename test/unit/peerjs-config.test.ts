import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { peerJsPaths } from '../../src/gateway/peerjs-protocol.js';

describe('PeerJS settings', () => {
  it('default to what PeerServer({ path: "/" }) serves', () => {
    const c = loadConfig({}, {});
    expect([c.peerjsPath, c.peerjsKey, c.peerjsExpireMs, c.peerjsAliveTimeoutMs, c.peerjsDiscovery]).toEqual(['/', 'peerjs', 5000, 90000, false]);
    expect(peerJsPaths(c)).toEqual({ base: '/', socket: '/peerjs', key: 'peerjs' });
  });

  it('read HERALD_PEERJS_* and normalise the mount', () => {
    const c = loadConfig({}, { HERALD_PEERJS_PATH: '/myapp', HERALD_PEERJS_KEY: 'k1', HERALD_PEERJS_EXPIRE_MS: '2000', HERALD_PEERJS_ALIVE_TIMEOUT_MS: '30000', HERALD_PEERJS_DISCOVERY: 'true' });
    expect(peerJsPaths(c)).toEqual({ base: '/myapp/', socket: '/myapp/peerjs', key: 'k1' });
    expect([c.peerjsExpireMs, c.peerjsAliveTimeoutMs, c.peerjsDiscovery]).toEqual([2000, 30000, true]);
  });

  it('refuse bad values with one line naming the setting', () => {
    for (const [name, value] of [['HERALD_PEERJS_PATH', 'myapp'], ['HERALD_PEERJS_KEY', 'a/b'], ['HERALD_PEERJS_EXPIRE_MS', '10'], ['HERALD_PEERJS_ALIVE_TIMEOUT_MS', 'soon'], ['HERALD_PEERJS_DISCOVERY', 'yes']]) {
      expect(() => loadConfig({}, { [name]: value })).toThrow(ConfigError);
      expect(() => loadConfig({}, { [name]: value })).toThrow(name);
    }
  });
});
