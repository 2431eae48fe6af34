/**
 * Herald browser SDK. Served by every Herald at /sdk/herald.js as one ES module:
 *   import { Signaling, Broadcaster, Viewer, Call } from '/sdk/herald.js';
 */
export { Signaling, HeraldError } from './signaling.js';
export type { ConnectionState, SignalingOptions, SignalingEvents, SignalEvent } from './signaling.js';
export { PeerLink } from './peer-link.js';
export type { SignalData, PeerLinkOptions } from './peer-link.js';
export { Broadcaster } from './broadcaster.js';
export { Viewer } from './viewer.js';
export { Call } from './call.js';
export type { JoinAck, Welcome, PeerInfo, RoleName, IceServer } from '../src/protocol/json-messages.js';
