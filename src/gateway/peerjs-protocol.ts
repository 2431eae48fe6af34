import { createHash } from 'node:crypto';
import type { WebSocket } from 'ws';
import type { Config } from '../config.js';
import { HeraldError, isHeraldError, type ErrorCode } from '../core/errors.js';
import type { Grant } from '../core/grant.js';
import { ownsPeerId } from '../core/peer-ids.js';
import type { PeerEvent, Session } from '../core/types.js';
import { ERROR_TABLE, closeCodeOf } from '../protocol/error-table.js';
import { rawMember } from '../protocol/raw-member.js';
import { Connection } from './connection.js';
import { AfterIoInterval } from './after-io-interval.js';
import { CLOSE, type ConnectionContext } from './context.js';
import type { GuardLimits } from './guard.js';
import { closeSocket, sendText } from './send.js';

/**
 * The PeerJS server protocol (what the `peer` package's PeerServer speaks, docs/peerjs.md) as a
 * thin translator onto the core's room-less addressing (core/direct.ts):
 *
 *   client → server  {"type":"OFFER"|"ANSWER"|"CANDIDATE"|"LEAVE"|"EXPIRE","dst":ID,"payload":…}
 *                    {"type":"HEARTBEAT"}
 *   server → client  {"type":"OPEN"}  {"type":"ERROR","payload":{"msg":…}}  {"type":"ID-TAKEN",…}
 *                    the relayed message with "src" set to the sender's id, payload untouched
 *                    {"type":"EXPIRE","src":TARGET,"dst":ID}  (messages to TARGET were dropped)
 */

/** PeerServer's error texts, which PeerJS apps may match on. */
export const PEERJS_ERRORS = {
  invalidKey: 'Invalid key provided',
  missingParameters: 'No id, token, or key supplied to websocket server',
} as const;

const HEARTBEAT = '{"type":"HEARTBEAT"}';
/** Message types relayed by `dst`; anything else (and bad JSON) is dropped, the socket kept. */
const RELAYED = new Set(['OFFER', 'ANSWER', 'CANDIDATE', 'LEAVE', 'EXPIRE']);
/** Types that only make sense to a connected peer: never queued (PeerServer drops them too). */
const NOT_QUEUED = new Set(['LEAVE', 'EXPIRE']);
/** Longest peer id accepted (PeerServer has no limit; Redis keys and logs want one). */
export const MAX_PEERJS_ID = 256;
/** Hub peer ids of PeerJS peers: no JSON or seed peer id can contain '/' after this. */
const HUB_PREFIX = 'peerjs/';

/** Where PeerJS clients find the server, derived from HERALD_PEERJS_PATH and _KEY. */
export interface PeerJsPaths {
  /** The mount (PeerServer's `path`), always ending with '/'. */
  base: string;
  /** The WebSocket endpoint: `<base>peerjs`. */
  socket: string;
  key: string;
}

export function peerJsPaths(config: Pick<Config, 'peerjsPath' | 'peerjsKey'>): PeerJsPaths {
  const base = config.peerjsPath.endsWith('/') ? config.peerjsPath : `${config.peerjsPath}/`;
  return { base, socket: `${base}peerjs`, key: config.peerjsKey };
}

/** The hub's id for PeerJS peer `id`. */
export const hubPeerId = (id: string) => HUB_PREFIX + id;
/** The PeerJS id of a hub peer id, or undefined when it is not a PeerJS peer. */
export const peerJsId = (hubId: string) => (hubId.startsWith(HUB_PREFIX) ? hubId.slice(HUB_PREFIX.length) : undefined);

/**
 * With HERALD_SECRET set, the PeerJS `token` option carries a Herald token (the gateway has
 * verified it): the peer id must be its `sub` (or `sub~<suffix>`, the id rule of every
 * protocol) and its roles must include `peer`.
 */
export function checkPeerJsGrant(grant: Grant | undefined, id: string | null): void {
  if (!grant || !id) return;
  // The id rule of every protocol (core/peer-ids.ts): the sub itself, or sub~<suffix>.
  if (!ownsPeerId(grant.sub, id)) throw new HeraldError('forbidden', `token is for peer ${grant.sub}, not ${id.slice(0, 64)}`);
  if (!grant.roles.has('peer')) throw new HeraldError('forbidden', 'token does not grant the peer role');
}

/**
 * Who holds an id: PeerServer lets the socket presenting the same `token` take it over and
 * refuses any other. The token is hashed (it may be a Herald JWT) and bound to the token's
 * `sub` when there is one, so the cluster compares identities without storing secrets.
 */
export function peerJsIdentity(token: string, grant: Grant | undefined): string {
  const identity = 'peerjs:' + createHash('sha256').update(`${grant?.sub ?? ''}\n${token}`).digest('base64url').slice(0, 22);
  // Copied into one flat string: kept as is, it is a rope over a slice of the whole digest's
  // string, which keeps all three alive for the peer's lifetime (about 100 bytes per idle peer).
  return Buffer.from(identity, 'latin1').toString('latin1');
}

/**
 * Sends PeerJS's form of an error that ends the connection (the error table's `peerjs`
 * column: ERROR, or ID-TAKEN for a held id), then closes with the table's close code.
 */
export function refusePeerJs(ws: WebSocket, code: ErrorCode, msg: string): void {
  const type = ERROR_TABLE[code].peerjs;
  sendText(ws, JSON.stringify({ type, payload: { msg: type === 'ID-TAKEN' ? 'ID is taken' : msg } }));
  closeSocket(ws, closeCodeOf(code), type === 'ID-TAKEN' ? 'ID is taken' : msg);
}

/**
 * Drops PeerJS peers that went silent: clients send HEARTBEAT every 5 s and answer nothing,
 * so any message counts as a sign of life. One timer for all PeerJS connections; it walks
 * only them, never the message path.
 */
export class PeerJsLiveness {
  private readonly connections = new Set<PeerJsConnection>();
  private readonly timer: AfterIoInterval;

  constructor(private readonly timeoutMs: number) {
    // After the sockets are read, so HEARTBEATs that arrived during a stall count.
    this.timer = new AfterIoInterval(() => this.sweep(), Math.max(250, Math.min(5000, timeoutMs / 4)));
  }

  watch(connection: PeerJsConnection): void {
    this.connections.add(connection);
  }

  forget(connection: PeerJsConnection): void {
    this.connections.delete(connection);
  }

  stop(): void {
    this.timer.stop();
  }

  private sweep(): void {
    const cutoff = performance.now() - this.timeoutMs;
    for (const c of this.connections) {
      if (c.lastSeen < cutoff) {
        this.connections.delete(c);
        c.close(CLOSE.silent, 'no heartbeat');
      }
    }
  }
}

/**
 * The guard limits of PeerJS sockets: the instance's rate, and no join timeout (there are no
 * rooms; liveness is the heartbeat's job). One object per instance, not one per socket.
 */
const roomlessLimits = new WeakMap<GuardLimits, GuardLimits>();
function withoutJoinTimeout(limits: GuardLimits): GuardLimits {
  let found = roomlessLimits.get(limits);
  if (!found) roomlessLimits.set(limits, (found = { rateBurst: limits.rateBurst, ratePerSecond: limits.ratePerSecond, joinTimeoutMs: 0 }));
  return found;
}

/** One PeerJS client's socket. */
export class PeerJsConnection extends Connection implements Session {
  readonly protocol = 'peerjs' as const;
  readonly peerId: string;
  lastSeen = performance.now();
  /** Deliveries that arrive before OPEN and the queued messages have gone out. */
  private held: PeerEvent[] | undefined = [];
  private registered = false;
  private isClosed = false;

  constructor(
    ws: WebSocket,
    ctx: ConnectionContext,
    private readonly liveness: PeerJsLiveness,
    readonly id: string,
    token: string,
    grant: Grant | undefined,
  ) {
    super(ws, ctx, withoutJoinTimeout(ctx.limits));
    this.peerId = hubPeerId(id);
    liveness.watch(this);
    void this.inbox.waitFor(this.open(peerJsIdentity(token, grant), grant));
  }

  protected override received(): void {
    this.lastSeen = performance.now();
  }

  /** PeerServer never answers a message it cannot use: errors are only counted. */
  protected refuse(code: ErrorCode): void {
    this.ctx.metrics.error(code, 'peerjs');
  }

  protected closed(): void {
    this.isClosed = true;
    this.liveness.forget(this);
    if (this.registered) this.ctx.hub.disconnect(this.peerId, this, false);
  }

  private async open(identity: string, grant: Grant | undefined): Promise<void> {
    let waiting: PeerEvent[];
    try {
      waiting = await this.ctx.hub.connectDirect(this.peerId, this, identity, grant);
    } catch (err) {
      this.held = undefined;
      const code = isHeraldError(err) ? err.code : 'internal';
      if (!isHeraldError(err)) this.ctx.log.error({ err, peer: this.id }, 'peerjs connect failed');
      this.ctx.metrics.error(code, 'peerjs');
      refusePeerJs(this.ws, code, isHeraldError(err) ? err.message : 'internal error');
      return;
    }
    this.registered = true;
    if (this.isClosed) {
      // Closed while registering: its close handler saw no registration.
      this.ctx.hub.disconnect(this.peerId, this, false);
      return;
    }
    this.write('{"type":"OPEN"}');
    const held = this.held ?? [];
    this.held = undefined;
    for (const event of waiting) this.deliver(event);
    for (const event of held) this.deliver(event);
  }

  deliver(event: PeerEvent): void {
    if (this.held) {
      this.held.push(event);
      return;
    }
    if (event.type === 'direct') {
      const { payload } = event;
      if (payload.kind !== 'peerjs') return;
      // PeerServer's JSON.stringify({type, src, dst, payload}); the payload is the sender's text.
      const src = peerJsId(event.from) ?? event.from;
      const tail = payload.payload === undefined ? '}' : `,"payload":${payload.payload}}`;
      this.write(`{"type":${JSON.stringify(payload.type)},"src":${JSON.stringify(src)},"dst":${JSON.stringify(this.id)}${tail}`);
    } else if (event.type === 'direct-expired') {
      const src = peerJsId(event.to) ?? event.to;
      this.write(`{"type":"EXPIRE","src":${JSON.stringify(src)},"dst":${JSON.stringify(this.id)}}`);
    }
  }

  protected handle(text: string): void {
    // Messages wait in the inbox until the id is registered; a refused socket's never count.
    if (!this.registered || this.isClosed) return;
    if (text === HEARTBEAT) return; // the bulk of an idle peer's traffic: no parse
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return this.ctx.metrics.error('bad-request', 'peerjs');
    }
    if (msg === null || typeof msg !== 'object') return;
    const { type, dst } = msg as { type?: unknown; dst?: unknown };
    if (type === 'HEARTBEAT' || typeof type !== 'string' || !RELAYED.has(type)) return;
    if (typeof dst !== 'string' || dst.length === 0 || dst.length > MAX_PEERJS_ID) return;
    const payload = rawMember(text, 'payload');
    this.ctx.hub.sendDirect(this.peerId, hubPeerId(dst), { kind: 'peerjs', type, payload }, !NOT_QUEUED.has(type));
  }
}

/** Parses and checks the upgrade's query as PeerServer does; returns the refusal text if any. */
export function parsePeerJsQuery(url: URL, key: string): { id: string; token: string } | string {
  const id = url.searchParams.get('id');
  const token = url.searchParams.get('token');
  const given = url.searchParams.get('key');
  if (!id || !token || !given) return PEERJS_ERRORS.missingParameters;
  if (given !== key) return PEERJS_ERRORS.invalidKey;
  if (id.length > MAX_PEERJS_ID) return `id longer than ${MAX_PEERJS_ID} characters`;
  return { id, token };
}
