import { z } from 'zod';
import type { Cluster, RoomSummary } from '../core/cluster.js';
import { HeraldError } from '../core/errors.js';

/** `GET /api/rooms` query: search, sort and one page (docs/operations.md "Admin API"). */
export const listingQuery = z.object({
  q: z.string().max(200).optional(),
  sort: z.enum(['id', '-id', 'members', '-members']).default('id'),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
export type ListingQuery = z.infer<typeof listingQuery>;

export function parseListingQuery(query: Record<string, unknown>): ListingQuery {
  const parsed = listingQuery.safeParse(query);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new HeraldError('bad-request', `${issue.path.join('.') || 'query'}: ${issue.message}`);
  }
  return parsed.data;
}

export interface RoomRow extends RoomSummary {
  /** Members by role, e.g. {broadcaster: 1, viewer: 12}. */
  roles: Record<string, number>;
  /** Members by protocol. */
  protocols: Record<string, number>;
  /** Members by the instance holding them. */
  instances: Record<string, number>;
}

export interface RoomPage {
  rooms: RoomRow[];
  /** Rooms matching the search (all pages). */
  total: number;
  offset: number;
  limit: number;
}

const bySort: Record<ListingQuery['sort'], (a: RoomSummary, b: RoomSummary) => number> = {
  id: (a, b) => a.id.localeCompare(b.id),
  '-id': (a, b) => b.id.localeCompare(a.id),
  members: (a, b) => a.members - b.members || a.id.localeCompare(b.id),
  '-members': (a, b) => b.members - a.members || a.id.localeCompare(b.id),
};

const tally = (into: Record<string, number>, key: string) => (into[key] = (into[key] ?? 0) + 1);

/**
 * One page of the cluster-wide room list: the rooms `visible` lets this caller see, filtered
 * by `q` (substring of the id, case-insensitive), sorted, then sliced. Only the page's rooms
 * are read member by member (for the role, protocol and instance breakdowns).
 */
export async function listRoomPage(cluster: Cluster, query: ListingQuery, visible: (room: string) => boolean): Promise<RoomPage> {
  const needle = query.q?.trim().toLowerCase();
  const matching = (await cluster.listRooms())
    .filter((r) => visible(r.id) && (!needle || r.id.toLowerCase().includes(needle)))
    .sort(bySort[query.sort]);
  const page = matching.slice(query.offset, query.offset + query.limit);
  const rows = await Promise.all(
    page.map(async (summary): Promise<RoomRow | undefined> => {
      const members = await cluster.roomMembers(summary.id);
      if (!members) return undefined; // emptied since the listing
      const row: RoomRow = { ...summary, members: members.length, roles: {}, protocols: {}, instances: {} };
      for (const m of members) {
        tally(row.roles, m.role);
        tally(row.protocols, m.protocol);
        tally(row.instances, m.instanceId);
      }
      return row;
    }),
  );
  return { rooms: rows.filter((r) => r !== undefined), total: matching.length, offset: query.offset, limit: query.limit };
}
