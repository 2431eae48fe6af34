/**
 * Herald browser SDK (docs/sdk.md). Served by every Herald at /sdk/herald.js as one ES
 * module, and published as `herald/client` with bundled types:
 *   import { Signaling, Broadcaster, Viewer, Call } from '/sdk/herald.js';
 *   import { Signaling, Broadcaster, Viewer, Call } from 'herald/client';
 */
export { Signaling, HeraldError } from './signaling.js';
export type { ConnectionState, SignalingOptions, SignalingEvents, SignalEvent } from './signaling.js';
export { isSignalData, PeerLink } from './peer-link.js';
export type { SignalData, PeerLinkOptions, PeerLinkEvents } from './peer-link.js';
export { MAX_MESSAGE_BYTES, MAX_QUEUED_BYTES } from './data-pipe.js';
export type { DataPayload, DataMessage } from './data-pipe.js';
export type { BroadcasterEvents } from './broadcaster.js';
export type { ViewerEvents } from './viewer.js';
export type { CallEvents } from './call.js';
export { Broadcaster } from './broadcaster.js';
export { WhepLink, WHEP_GATHER_CAP_MS } from './whep-link.js';
export type { WhepLinkEvents, WhepLinkOptions, WhepSignal } from './whep-link.js';
export { Viewer } from './viewer.js';
export { Call } from './call.js';
export type { JoinAck, Welcome, PeerInfo, RoleName, IceServer, ErrorCode } from '../src/protocol/json-messages.js';
