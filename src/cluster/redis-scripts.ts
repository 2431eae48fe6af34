/**
 * The Lua scripts of the Redis cluster. Each one touches the keys of one hash slot only
 * (one room, or one peer), so they would run unchanged on Redis Cluster.
 *
 * Room keys (all under the hash tag `{room:<id>}`):
 *   members  hash  peerId -> member JSON (the Member plus `c`, the holder's claim number)
 *   bcast    string  peerId of the broadcaster
 *   insts    hash  instanceId -> how many members that instance holds in the room
 *   ver      string  a counter bumped by every change: the order replicas apply changes in
 *
 * Peer keys (`{peer:<id>}`): a hash {i: holding instance, s: claim counter}.
 */

/** Shared by the room scripts: drop one member's count from `insts`. */
const DECR = `
local function decr(insts, inst)
  if redis.call('HINCRBY', insts, inst, -1) <= 0 then redis.call('HDEL', insts, inst) end
end
`;

/**
 * JOIN: admits a member atomically. Mirrors checkAdmission (src/core/room.ts): one
 * broadcaster per room, then the maxPeers cap for members not already in the room.
 * Also refuses a join whose claim is older than the claim of the member it would replace
 * (two instances racing for one peer id: the newest claimant keeps the membership).
 * KEYS members bcast insts ver; ARGV peerId memberJSON role instanceId maxPeers wantSnapshot claim
 * Returns {version, instances[], previousJSON or '', snapshot[] (if asked)}.
 */
export const JOIN = `${DECR}
local peer, role, inst = ARGV[1], ARGV[3], ARGV[4]
local prev = redis.call('HGET', KEYS[1], peer)
local b = redis.call('GET', KEYS[2])
if role == 'broadcaster' and b and b ~= peer then
  return redis.error_reply('conflict')
end
local max = tonumber(ARGV[5])
if not prev and max > 0 and redis.call('HLEN', KEYS[1]) >= max then
  return redis.error_reply('room-full ' .. max)
end
if prev then
  local p = cjson.decode(prev)
  if p.c and tonumber(p.c) > tonumber(ARGV[7]) then return redis.error_reply('stale') end
  if p.role == 'broadcaster' and role ~= 'broadcaster' then redis.call('DEL', KEYS[2]) end
  decr(KEYS[3], p.instanceId)
end
redis.call('HSET', KEYS[1], peer, ARGV[2])
if role == 'broadcaster' then redis.call('SET', KEYS[2], peer) end
redis.call('HINCRBY', KEYS[3], inst, 1)
local v = redis.call('INCR', KEYS[4])
redis.call('PERSIST', KEYS[4])
local snap = {}
if ARGV[6] == '1' then snap = redis.call('HVALS', KEYS[1]) end
return {v, redis.call('HKEYS', KEYS[3]), prev or '', snap}
`;

/**
 * LEAVE: removes one member, optionally only if `onlyInstance` still holds it.
 * KEYS members bcast insts ver; ARGV peerId onlyInstance
 * Returns {} when nothing was removed, else {version, instances[], removedJSON}.
 */
export const LEAVE = `${DECR}
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if not prev then return {} end
local p = cjson.decode(prev)
if ARGV[2] ~= '' and p.instanceId ~= ARGV[2] then return {} end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
decr(KEYS[3], p.instanceId)
local v = redis.call('INCR', KEYS[4])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('EXPIRE', KEYS[4], 120) end
return {v, redis.call('HKEYS', KEYS[3]), prev}
`;

/**
 * REAP: removes every member a (dead or stopping) instance holds in the room.
 * KEYS members bcast insts ver; ARGV instanceId
 * Returns {} when there was none, else {version, instances[], removedJSON...}.
 */
export const REAP = `
local all = redis.call('HGETALL', KEYS[1])
local removed = {}
local b = redis.call('GET', KEYS[2])
for i = 1, #all, 2 do
  local p = cjson.decode(all[i + 1])
  if p.instanceId == ARGV[1] then
    redis.call('HDEL', KEYS[1], all[i])
    if b == all[i] then redis.call('DEL', KEYS[2]) end
    removed[#removed + 1] = all[i + 1]
  end
end
redis.call('HDEL', KEYS[3], ARGV[1])
if #removed == 0 then return {} end
local v = redis.call('INCR', KEYS[4])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('EXPIRE', KEYS[4], 120) end
local out = {v, redis.call('HKEYS', KEYS[3])}
for _, m in ipairs(removed) do out[#out + 1] = m end
return out
`;

/**
 * RESTORE: after Redis came back (possibly empty), writes back the members this instance
 * holds, and removes the ones it no longer holds. A member now held elsewhere, or a
 * broadcaster whose slot another took meanwhile, is reported lost.
 * KEYS members bcast insts ver; ARGV instanceId memberJSON...
 * Returns {version, instances[], added[], removed[], lost[], snapshot[]}.
 */
export const RESTORE = `
local inst = ARGV[1]
local mine = {}
local added, removed, lost = {}, {}, {}
local count = 0
for i = 2, #ARGV do
  local m = cjson.decode(ARGV[i])
  mine[m.peerId] = true
  local cur = redis.call('HGET', KEYS[1], m.peerId)
  local ok = true
  if cur then
    local c = cjson.decode(cur)
    if c.instanceId ~= inst then ok = false end
  end
  local b = redis.call('GET', KEYS[2])
  if ok and m.role == 'broadcaster' and b and b ~= m.peerId then ok = false end
  if ok then
    if not cur then added[#added + 1] = ARGV[i] end
    redis.call('HSET', KEYS[1], m.peerId, ARGV[i])
    if m.role == 'broadcaster' then redis.call('SET', KEYS[2], m.peerId) end
    count = count + 1
  else
    lost[#lost + 1] = ARGV[i]
  end
end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local p = cjson.decode(all[i + 1])
  if p.instanceId == inst and not mine[all[i]] then
    redis.call('HDEL', KEYS[1], all[i])
    if redis.call('GET', KEYS[2]) == all[i] then redis.call('DEL', KEYS[2]) end
    removed[#removed + 1] = all[i + 1]
  end
end
if count > 0 then redis.call('HSET', KEYS[3], inst, count) else redis.call('HDEL', KEYS[3], inst) end
local v = redis.call('INCR', KEYS[4])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('EXPIRE', KEYS[4], 120) else redis.call('PERSIST', KEYS[4]) end
return {v, redis.call('HKEYS', KEYS[3]), added, removed, lost, redis.call('HVALS', KEYS[1])}
`;

/** SNAPSHOT: KEYS members ver. Returns {version, memberJSON[]} read atomically. */
export const SNAPSHOT = `
return {tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('HVALS', KEYS[1])}
`;

/**
 * CLAIM: KEYS peer; ARGV instanceId identity. Binds the peer to this instance and returns
 * {previous holder or '', claim number}; or {'!', 0} when another identity (token `sub`;
 * '' in open mode) holds the id: an identity never takes over another's peer id.
 */
export const CLAIM = `
local old = redis.call('HGET', KEYS[1], 'i')
if old and (redis.call('HGET', KEYS[1], 'u') or '') ~= ARGV[2] then return {'!', 0} end
local s = redis.call('HINCRBY', KEYS[1], 's', 1)
redis.call('HSET', KEYS[1], 'i', ARGV[1], 'u', ARGV[2])
redis.call('PERSIST', KEYS[1])
return {old or '', s}
`;

/**
 * RECLAIM (recovery): KEYS peer; ARGV instanceId claim identity. Binds the peer back to this
 * instance unless another one holds it now; returns that other holder, or ''.
 */
export const RECLAIM = `
local old = redis.call('HGET', KEYS[1], 'i')
if old and old ~= ARGV[1] then return old end
redis.call('HSET', KEYS[1], 'i', ARGV[1], 'u', ARGV[3])
if tonumber(redis.call('HGET', KEYS[1], 's') or '0') < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 's', ARGV[2])
end
redis.call('PERSIST', KEYS[1])
return ''
`;

/**
 * RELEASE: KEYS peer; ARGV instanceId. Unbinds the peer if this instance still holds it;
 * the claim counter lingers 120 s (the grace docs/security.md documents), longer than any
 * membership carrying that claim can outlive its peer, so that a quick reconnect's claim
 * still counts up; then the key is gone (one per peer id ever seen would pile up).
 */
export const RELEASE = `
if redis.call('HGET', KEYS[1], 'i') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'i', 'u')
  redis.call('EXPIRE', KEYS[1], 120)
  return 1
end
return 0
`;
