import { randomUUID } from 'node:crypto';
import type { Handoff, ResumeClaim } from '../../core/cluster.js';
import { HeraldError } from '../../core/errors.js';
import { eventRoom, type Member, type PeerEvent, type Role } from '../../core/types.js';
import type { Context } from './context.js';
import { mapError } from './membership.js';
import { withoutRaw, type HandoffReply, type PeerTaken, type WireHandoff } from './wire.js';

/** How long a taken-over peer's memberships wait for the new holder to re-join them. */
const TAKEOVER_GRACE_MS = 3000;
/** How long a resume waits for the previous holder to hand the peer over. */
const HANDOFF_WAIT_MS = 2000;
/** How long the previous holder forwards events for a handed-over peer (in flight meanwhile). */
const FORWARD_MS = 10_000;

/**
 * Which instance holds a peer id, and moving a peer between instances. Connecting claims
 * the id (CLAIM script: newest claim wins; another identity never takes it); the previous
 * holder closes its socket as replaced. A resume asks the previous holder to hand the peer
 * over: its memberships move without anyone hearing a leave, its queued events come along,
 * and events still in flight to the old holder are forwarded for a while.
 */
export class PeerClaims {
  /** Peers claimed here: claim number, how many connects hold it, and the identity. */
  readonly claims = new Map<string, { seq: number; holds: number; identity: string }>();
  /** Peers held here without a claim in the directory (claimed during an outage). */
  readonly unbound = new Set<string>();
  /** Releases that could not reach Redis; replayed by recovery. */
  readonly pendingRelease = new Set<string>();
  /** Resumes waiting for the previous holder's hand-off, by request id. */
  private readonly handoffWaits = new Map<string, (h: WireHandoff | null) => void>();
  /** Events for a peer whose hand-off is being completed here, held to keep their order. */
  private readonly handoffBuffers = new Map<string, PeerEvent[]>();
  /** Peers handed over to another instance: events still arriving here are passed on. */
  private readonly forwarded = new Map<string, { to: string; until: number }>();

  constructor(private readonly ctx: Context) {}

  claimSeq(peerId: string): number {
    return this.claims.get(peerId)?.seq ?? 0;
  }

  /** Where an event for a peer of ours that moved away should go now, if it moved. */
  forwardedTo(peerId: string): string | undefined {
    return this.forwarded.size > 0 ? this.forwarded.get(peerId)?.to : undefined;
  }

  async claim(peerId: string, resume?: ResumeClaim): Promise<Handoff | undefined> {
    const { ctx } = this;
    this.forwarded.delete(peerId);
    if (!ctx.healthy || !ctx.masters.keyUp(ctx.keys.peer(peerId))) return this.claimOffline(peerId, resume);
    let old: string;
    let seq: number;
    try {
      [old, seq] = await ctx.track(ctx.cmd.heraldClaim(ctx.keys.peer(peerId), ctx.me, resume?.identity ?? ''));
    } catch (err) {
      const mapped = mapError(err, '', 0);
      if (mapped instanceof HeraldError && mapped.code === 'unavailable') return this.claimOffline(peerId, resume);
      throw mapped;
    }
    if (old === '!') throw new HeraldError('conflict', `peer id ${peerId} belongs to another identity`);
    const held = this.claims.get(peerId);
    this.claims.set(peerId, { seq, holds: (held?.holds ?? 0) + 1, identity: resume?.identity ?? '' });
    this.pendingRelease.delete(peerId);
    void ctx.cmd.sadd(ctx.keys.instance(ctx.me, 'peers'), peerId).catch(() => {});
    if (!old || old === ctx.me) return undefined;
    if (!resume?.resumeToken && !resume?.carryRooms) {
      ctx.bus.publish(old, { type: 'taken', peer: peerId });
      return undefined;
    }
    return this.takeOver(old, peerId, resume);
  }

  /**
   * The directory (or this peer's slot) is unreachable: hold the peer here without a claim.
   * Registering again after the outage binds it (RECLAIM); if another instance took the id
   * meanwhile, that one keeps it and this socket is closed as replaced. No hand-off can
   * happen now, so a resume from another instance starts afresh.
   */
  private claimOffline(peerId: string, resume?: ResumeClaim): undefined {
    const held = this.claims.get(peerId);
    this.claims.set(peerId, { seq: held?.seq ?? 0, holds: (held?.holds ?? 0) + 1, identity: resume?.identity ?? '' });
    this.pendingRelease.delete(peerId);
    this.unbound.add(peerId);
    return undefined;
  }

  /**
   * A resume landed here while `old` holds the peer: ask `old` to hand it over, move its
   * memberships here (silently), and return its rooms and queued events. Events for the
   * peer that arrive meanwhile are held and appended, so the order is kept.
   */
  private async takeOver(old: string, peerId: string, resume: ResumeClaim): Promise<Handoff | undefined> {
    const { ctx } = this;
    const request = randomUUID();
    const held: PeerEvent[] = [];
    this.handoffBuffers.set(peerId, held);
    let handed: Handoff | undefined;
    try {
      const wire = await new Promise<WireHandoff | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), HANDOFF_WAIT_MS);
        this.handoffWaits.set(request, (h) => {
          clearTimeout(timer);
          resolve(h);
        });
        const carry = resume.carryRooms ? { carryRooms: true as const } : {};
        ctx.bus.publish(old, { type: 'taken', peer: peerId, request, from: ctx.me, resumeToken: resume.resumeToken, identity: resume.identity, ...carry });
      });
      if (!wire) return undefined;
      const rooms: [string, Role][] = [];
      for (const m of wire.members) {
        try {
          await ctx.membership.admit(m.roomId, { ...m.member, instanceId: ctx.me }, 0, true);
          rooms.push([m.roomId, m.member.role]);
        } catch (err) {
          ctx.log.warn({ err: String(err), peer: peerId, room: m.roomId }, 'resumed peer could not keep its room');
        }
      }
      handed = { rooms, queue: [...wire.queue, ...held], unacked: wire.unacked, seq: wire.seq };
      return handed;
    } finally {
      this.handoffWaits.delete(request);
      this.handoffBuffers.delete(peerId);
      if (!handed) for (const event of held) ctx.local.deliver(peerId, event);
    }
  }

  /** A claim notice from another instance. */
  receiveTaken(wire: PeerTaken): void {
    if (wire.request && wire.from) {
      this.handOffTo(wire.from, wire.request, wire.peer, { resumeToken: wire.resumeToken, identity: wire.identity, carryRooms: wire.carryRooms === true });
    }
    else this.taken(wire.peer);
  }

  receiveHandoff(wire: HandoffReply): void {
    this.handoffWaits.get(wire.request)?.(wire.handoff);
  }

  /** An event for a peer of ours, from another instance. */
  receiveEvent(peerId: string, event: PeerEvent): void {
    const held = this.handoffBuffers.get(peerId);
    if (held) {
      held.push(event);
      return;
    }
    const forward = this.forwardedTo(peerId);
    if (forward) this.ctx.bus.publish(forward, { type: 'deliver', peer: peerId, event }, eventRoom(event));
    else this.ctx.local.deliver(peerId, event);
  }

  /** Another instance resumes one of our peers: hand it over if its token matches. */
  private handOffTo(to: string, request: string, peerId: string, claim: ResumeClaim): void {
    const { ctx } = this;
    const given = ctx.local.core.handOff(peerId, claim);
    if (!given) {
      ctx.bus.publish(to, { type: 'handoff', request, handoff: null });
      this.taken(peerId);
      return;
    }
    this.claims.delete(peerId);
    const members: { roomId: string; member: Member }[] = [];
    for (const [roomId] of given.rooms) {
      const member = ctx.replicas.get(roomId)?.room.get(peerId);
      if (member?.instanceId === ctx.me) members.push({ roomId, member });
    }
    this.forwarded.set(peerId, { to, until: Date.now() + FORWARD_MS });
    const unacked = given.unacked?.map(({ seq, event }) => ({ seq, event: withoutRaw(event) }));
    ctx.bus.publish(to, { type: 'handoff', request, handoff: { rooms: given.rooms, queue: given.queue.map(withoutRaw), members, unacked, seq: given.seq } });
    this.cleanUpAfter(peerId);
  }

  async release(peerId: string): Promise<void> {
    const { ctx } = this;
    const held = this.claims.get(peerId);
    if (!held) return;
    // A newer connect of the same id claimed it again meanwhile: keep the binding.
    if (--held.holds > 0) return;
    this.claims.delete(peerId);
    if (this.unbound.delete(peerId)) return; // never written: nothing to release
    if (!ctx.healthy) {
      this.pendingRelease.add(peerId);
      return;
    }
    try {
      await ctx.track(ctx.cmd.heraldRelease(ctx.keys.peer(peerId), ctx.me));
      await ctx.cmd.srem(ctx.keys.instance(ctx.me, 'peers'), peerId);
    } catch {
      this.pendingRelease.add(peerId);
    }
  }

  /**
   * Another instance claimed one of our peers (a reconnect landed there): close ours, and
   * give the new holder a moment to re-join the rooms before ours are let go.
   */
  taken(peerId: string): void {
    this.claims.delete(peerId);
    this.ctx.local.core.peerTaken(peerId);
    this.cleanUpAfter(peerId);
  }

  /** Lets go of memberships a peer that left this instance still has here, after a grace. */
  private cleanUpAfter(peerId: string): void {
    const { ctx } = this;
    const rooms: string[] = [];
    for (const r of ctx.replicas.all()) if (r.room.get(peerId)?.instanceId === ctx.me) rooms.push(r.room.id);
    if (rooms.length === 0) return;
    ctx.later(TAKEOVER_GRACE_MS, async () => {
      for (const roomId of rooms) {
        if (ctx.replicas.get(roomId)?.room.get(peerId)?.instanceId !== ctx.me) continue;
        await ctx.membership.remove(roomId, peerId, 'closed', ctx.me).catch(() => {});
      }
    });
  }

  /** Forgets forwarding entries past their time (called every tick). */
  prune(now: number): void {
    for (const [peerId, f] of this.forwarded) if (f.until < now) this.forwarded.delete(peerId);
  }
}
