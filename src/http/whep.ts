import { createHash, randomBytes } from 'node:crypto';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import getRawBody from 'raw-body';
import { tokenFrom, type Tokens } from '../auth/tokens.js';
import { iceServersFor } from '../auth/turn.js';
import type { Config } from '../config.js';
import { HeraldError, isHeraldError, type ErrorCode } from '../core/errors.js';
import { checkGrant, type Grant } from '../core/grant.js';
import type { Hub } from '../core/hub.js';
import { idNamespace } from '../core/peer-ids.js';
import { originAllowed } from '../gateway/request.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { ERROR_TABLE, whepStatusOf } from '../protocol/error-table.js';
import { RoomId } from '../protocol/json-messages.js';
import { iceServerLinks, isMediaSdp, parseSdpFrag } from './whep-sdp.js';
import { WhepSession, type WhepTrickle } from './whep-session.js';

/** The largest offer or trickle fragment taken (413 past it). */
export const WHEP_MAX_BODY = 64 * 1024;
/** The most candidates one PATCH may carry (413 past it): each is one signal to the broadcaster. */
export const WHEP_MAX_CANDIDATES = 64;
/** A session id is a WHEP viewer's peer id (newWhepId): no other member can be reached through the resource. */
const SESSION_ID = /^(?:[A-Za-z0-9_.:@~-]{1,41}~)?whep-[A-Za-z0-9_-]{22}$/;

/**
 * WHEP (draft-ietf-wish-whep; docs/whep.md): a standard player watches a Herald broadcast.
 * `POST /whep/<room>` makes the player a viewer session in the room (src/http/whep-session.ts)
 * and waits for the broadcaster's browser to answer; `PATCH` / `DELETE` on the session URL
 * reach the session wherever it is held: on this instance directly, on another through the
 * cluster (a PATCH by peer id, Cluster.direct; a DELETE as a cluster-wide leave).
 */
export class WhepEndpoint {
  private readonly sessions = new Map<string, WhepSession>();

  constructor(
    private readonly config: Config,
    private readonly hub: Hub,
    private readonly tokens: Tokens | undefined,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** WHEP sessions held by this instance (metrics). */
  get size(): number {
    return this.sessions.size;
  }

  /** Ends every session (drain): each player's broadcaster hears it leave. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((s) => s.end('closed')));
  }

  router(): Router {
    const router = new Router();
    const resource = '/whep/:room/:session';
    // A plain OPTIONS (no CORS preflight: @koa/cors answers those before any router).
    router.options(['/whep/:room', resource], (ctx) => void (ctx.status = 204));
    router.post('/whep/:room', (ctx) => this.answering(ctx, () => this.post(ctx)));
    router.patch(resource, (ctx) => this.answering(ctx, () => this.patch(ctx)));
    router.delete(resource, (ctx) => this.answering(ctx, () => this.delete(ctx)));
    return router;
  }

  /**
   * Middleware mounted before CORS: what every WHEP answer carries, errors and preflights
   * included (a preflight needs no token, and players read Accept-Post off it).
   */
  readonly headers = async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.path.startsWith('/whep/')) {
      ctx.set('Access-Control-Expose-Headers', 'Location, ETag, Link, Retry-After, WWW-Authenticate, Accept-Post');
      ctx.set('Cache-Control', 'no-store');
      if (ctx.method === 'OPTIONS') ctx.set('Accept-Post', 'application/sdp');
    }
    await next();
  };

  /** Runs a handler; a HeraldError becomes its WHEP status (error table) with `Retry-After` where it helps. */
  private async answering(ctx: Context, handler: () => Promise<void>): Promise<void> {
    try {
      if (!originAllowed(ctx.get('origin') || undefined, this.config.allowedOrigins)) throw new HeraldError('forbidden', 'origin not allowed');
      await handler();
    } catch (err) {
      const herald = isHeraldError(err) ? err : undefined;
      if (!herald) this.log.error({ err, path: ctx.path }, 'whep request failed');
      const code: ErrorCode = herald?.code ?? 'internal';
      this.metrics.error(code, 'whep');
      ctx.status = whepStatusOf(code);
      const retryAfter = ERROR_TABLE[code].retryAfter;
      if (retryAfter !== undefined) ctx.set('Retry-After', String(retryAfter));
      if (code === 'unauthorized') ctx.set('WWW-Authenticate', `Bearer realm="herald", error="invalid_token"`);
      ctx.body = { error: code, message: herald?.message ?? 'internal error' };
    }
  }

  private async post(ctx: Context): Promise<void> {
    const roomId = this.room(ctx);
    const grant = await this.authorize(ctx, roomId);
    const offer = await this.body(ctx, 'application/sdp');
    if (!isMediaSdp(offer)) throw new HeraldError('bad-request', 'the body is not an SDP offer with an audio or video section');
    const cap = this.config.whepMaxSessions;
    if (cap > 0 && this.sessions.size >= cap) throw new HeraldError('unavailable', `this instance holds its ${cap} WHEP sessions`);
    const peerId = newWhepId(grant?.sub);
    const session = new WhepSession(this.hub, roomId, peerId, grant, (s) => this.sessions.get(s.peerId) === s && this.sessions.delete(s.peerId));
    this.sessions.set(peerId, session);
    // A player that gives up (closes the request) ends its session instead of leaving it behind.
    const hangUp = new AbortController();
    const onClose = () => !ctx.res.writableEnded && hangUp.abort();
    ctx.res.once('close', onClose);
    let answer: string;
    try {
      answer = await session.open(offer, this.config.whepAnswerTimeoutMs, hangUp.signal);
    } finally {
      ctx.res.off('close', onClose);
    }
    ctx.status = 201;
    ctx.type = 'application/sdp';
    ctx.set('Location', `/whep/${encodeURIComponent(roomId)}/${peerId}`);
    ctx.set('ETag', etagOf(peerId));
    const links = iceServerLinks(iceServersFor(this.config, grant?.sub));
    if (links.length > 0) ctx.set('Link', links);
    ctx.body = answer;
  }

  private async patch(ctx: Context): Promise<void> {
    const roomId = this.room(ctx);
    await this.authorize(ctx, roomId);
    const peerId = this.sessionId(ctx);
    const ifMatch = ctx.get('if-match');
    // An ICE restart (If-Match: *) would need a new answer from the broadcaster: trickle only (RFC 9725 §4.3).
    // Conditional-request statuses (RFC 9110), not error codes of Herald's own.
    if (ifMatch === '*') return refuse(ctx, 422, 'ICE restarts are not supported; start a new session');
    if (ifMatch && ifMatch !== etagOf(peerId)) return refuse(ctx, 412, 'If-Match does not match the session ETag');
    const candidates = parseSdpFrag(await this.body(ctx, 'application/trickle-ice-sdpfrag'));
    if (!candidates) throw new HeraldError('bad-request', 'the body is not an SDP fragment');
    if (candidates.length > WHEP_MAX_CANDIDATES) throw new HeraldError('too-large', `at most ${WHEP_MAX_CANDIDATES} candidates per PATCH`);
    const local = this.sessions.get(peerId);
    if (local && local.room === roomId) local.trickle(candidates);
    else if (!local) {
      const trickle: WhepTrickle = { whep: 'trickle', room: roomId, candidates };
      const event = { type: 'direct' as const, from: 'whep', payload: { kind: 'json' as const, data: trickle } };
      // max 0: never queued; 'sent' only when some instance holds the session's peer id.
      const outcome = await this.hub.cluster.direct.post(peerId, { from: 'whep', at: Date.now(), event }, 1000, 0);
      if (outcome !== 'sent') throw notFound(peerId);
    } else throw notFound(peerId);
    ctx.status = 204;
  }

  private async delete(ctx: Context): Promise<void> {
    const roomId = this.room(ctx);
    await this.authorize(ctx, roomId);
    const peerId = this.sessionId(ctx);
    const local = this.sessions.get(peerId);
    if (local && local.room === roomId) await local.end('left');
    // Held elsewhere: a cluster-wide leave of that WHEP member, which its instance applies to the session (`removed`).
    else if (local || !(await this.remoteWhepMember(roomId, peerId)) || !(await this.hub.kick(roomId, peerId))) throw notFound(peerId);
    ctx.status = 200;
    ctx.body = '';
  }

  private async remoteWhepMember(roomId: string, peerId: string): Promise<boolean> {
    const members = await this.hub.cluster.roomMembers(roomId);
    return members?.some((m) => m.peerId === peerId && m.protocol === 'whep') === true;
  }

  private room(ctx: Context): string {
    const parsed = RoomId.safeParse(ctx.params.room);
    if (!parsed.success) throw new HeraldError('bad-request', `room: ${parsed.error.issues[0]!.message}`);
    return parsed.data;
  }

  private sessionId(ctx: Context): string {
    const id = String(ctx.params.session);
    if (!SESSION_ID.test(id)) throw notFound(id);
    return id;
  }

  /** With HERALD_SECRET: a token with the viewer role for this room (Bearer, or ?token=). */
  private async authorize(ctx: Context, roomId: string): Promise<Grant | undefined> {
    if (!this.tokens) return undefined;
    const grant = await this.tokens.verify(tokenFrom(new URL(ctx.href), ctx.get('authorization') || undefined));
    checkGrant(grant, roomId, 'viewer');
    return grant;
  }

  /** The body as text: 415 for another type, 413 past 64 KiB. */
  private async body(ctx: Context, type: string): Promise<string> {
    const given = (ctx.get('content-type').split(';')[0] ?? '').trim().toLowerCase();
    if (given !== type) throw new HeraldError('unsupported-type', `Content-Type must be ${type}`);
    try {
      return await getRawBody(ctx.req, { limit: WHEP_MAX_BODY, encoding: 'utf8' });
    } catch (err) {
      if ((err as { type?: string }).type === 'entity.too.large') throw new HeraldError('too-large', `the body is over ${WHEP_MAX_BODY} bytes`);
      throw new HeraldError('bad-request', 'the body could not be read');
    }
  }
}

/** A WHEP viewer's peer id, which is also its session id: random, inside the token identity's id space. */
function newWhepId(identity: string | undefined): string {
  const random = `whep-${randomBytes(16).toString('base64url')}`;
  return identity === undefined ? random : `${idNamespace(identity)}~${random}`;
}

/** The session's ETag, the same on every instance (the session never changes: no ICE restarts). */
function etagOf(peerId: string): string {
  return `"${createHash('sha256').update(peerId).digest('base64url').slice(0, 22)}"`;
}

function refuse(ctx: Context, status: number, message: string): void {
  ctx.status = status;
  ctx.body = { error: 'bad-request', message };
}

const notFound = (id: string) => new HeraldError('not-found', `no WHEP session ${id}`);
