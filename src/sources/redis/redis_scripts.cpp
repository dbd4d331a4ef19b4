// Lua source of the Redis scripts (see redis_scripts.hpp for the key layout).
#include "sources/redis/redis_scripts.hpp"

namespace preforkd::redis {

// Shared helper, prepended to the scripts that need it: the job's id, adding one
// (and its hash) to a job a plain Resque client enqueued. An embedded id is kept only
// when `reuse` is set (a claim) and its record waits for exactly this: state queued
// (recovered, released, retried by preforkctl) or retry (due again). Otherwise the
// member is dropped and the job gets a new id: a record that expired after keep_done
// (resque-web's "retry" of an old failure), one of another namespace, or a copy of a
// job that is running or finished, which would share the original's record and stay
// "running" for ever. No pattern here backtracks over a run of spaces: a payload with
// a long one (Lua's '^(.-)%s*$') kept the whole Redis server busy for seconds. The third
// value, `tracked`, is false for a body that is no JSON object: it has nowhere to keep
// its id, and gets a new one (attempts uncounted) at every claim.
#define PREFORKD_LUA_WITH_ID                                                          \
  "local function trim_end(s)\n"                                                      \
  "  local last = #s\n"                                                               \
  "  while last > 0 do\n"                                                             \
  "    local c = string.byte(s, last)\n"                                              \
  "    if c ~= 32 and (c < 9 or c > 13) then break end\n"                            \
  "    last = last - 1\n"                                                             \
  "  end\n"                                                                           \
  "  return string.sub(s, 1, last)\n"                                                 \
  "end\n"                                                                             \
  "local function with_id(p, q, raw, now, reuse)\n"                                   \
  "  local body = trim_end(raw)\n"                                                    \
  "  local at, _, id = string.find(body, '\"preforkd\":{\"id\":\"(%d+)\"}}$')\n"      \
  "  if id and reuse then\n"                                                          \
  "    local state = redis.call('HGET', p .. 'job:' .. id, 'state')\n"               \
  "    if state == 'queued' or state == 'retry' then return id, raw, true end\n"     \
  "  end\n"                                                                           \
  "  if id then\n"                                                                    \
  "    local before = trim_end(string.sub(body, 1, at - 1))\n"                        \
  "    if string.sub(before, -1) == ',' then before = string.sub(before, 1, -2) end\n" \
  "    body = before .. '}'\n"                                                        \
  "  end\n"                                                                           \
  "  id = tostring(redis.call('INCR', p .. 'next_id'))\n"                             \
  "  raw = body\n"                                                                    \
  "  local tracked = true\n"                                                          \
  "  if string.match(body, '^%s*{%s*}$') then\n"                                      \
  "    raw = '{\"preforkd\":{\"id\":\"' .. id .. '\"}}'\n"                            \
  "  elseif string.sub(body, -1) == '}' and string.match(body, '^%s*{') then\n"       \
  "    raw = string.sub(body, 1, -2) .. ',\"preforkd\":{\"id\":\"' .. id .. '\"}}'\n" \
  "  else\n"                                                                          \
  "    tracked = false\n"                                                             \
  "  end\n"                                                                           \
  "  redis.call('HSET', p .. 'job:' .. id, 'queue', q, 'payload', raw, 'state', 'queued',\n" \
  "             'attempts', 0, 'created_at', now, 'run_at', now)\n"                   \
  "  return id, raw, tracked\n"                                                       \
  "end\n"

// Shared helper: a job's unique key (`unique`, from its hash), when it still names this
// job, is free again.
#define PREFORKD_LUA_RELEASE_UNIQUE                                                   \
  "local function release_unique(p, unique, id)\n"                                    \
  "  if unique and unique ~= '' and redis.call('GET', p .. 'unique:' .. unique) == id then\n" \
  "    redis.call('DEL', p .. 'unique:' .. unique)\n"                                 \
  "  end\n"                                                                           \
  "end\n"

// ARGV: ns worker now lease keep_done max_jobs n_acks acked-id... queue...
// Returns { {queue, entry, attempts, max_attempts, priority, tracked}..., {'wrongtype', queue}...,
// next_due_ms or "" }: tracked is 1 or 0 (see with_id); a wrongtype row names a queue
// whose key is no list.
const char* const claim_script =
    PREFORKD_LUA_WITH_ID
    PREFORKD_LUA_RELEASE_UNIQUE
    "local ns, worker, now, lease, keep_done = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]\n"
    "local max_jobs, n_acks = tonumber(ARGV[6]), tonumber(ARGV[7])\n"
    "local p = ns .. ':preforkd:'\n"
    "local processing = p .. 'processing:' .. worker\n"
    "for i = 1, n_acks do\n"
    "  local id = ARGV[7 + i]\n"
    "  local job = p .. 'job:' .. id\n"
    "  local fields = redis.call('HMGET', job, 'queue', 'unique_key', 'payload')\n"
    "  if fields[3] and redis.call('LREM', processing, 1, id .. '\\n' .. fields[3]) > 0 then\n"
    "    redis.call('HSET', job, 'state', 'done', 'finished_at', now, 'locked_by', '', 'last_error', '')\n"
    "    redis.call('PEXPIRE', job, keep_done)\n"
    "    release_unique(p, fields[2], id)\n"
    "    redis.call('INCR', ns .. ':stat:processed')\n"
    "    redis.call('HINCRBY', p .. 'done', fields[1] or '?', 1)\n"
    "  end\n"
    "end\n"
    "local wrong = {}\n"
    "local due = redis.call('ZRANGEBYSCORE', p .. 'delayed', '-inf', now, 'LIMIT', 0, 100)\n"
    "for _, member in ipairs(due) do\n"
    "  local nl = string.find(member, '\\n', 1, true)\n"
    "  local q = string.sub(member, 1, nl - 1)\n"
    "  local raw = string.sub(member, nl + 1)\n"
    // A queue key of another type (a string, a set) is reported, not fatal: the other
    // queues are served (see the `wrongtype` rows below).
    "  local pushed = redis.pcall('RPUSH', ns .. ':queue:' .. q, raw)\n"
    "  if type(pushed) == 'table' and pushed.err then\n"
    "    wrong[q] = true\n"
    "  else\n"
    "    redis.call('SADD', ns .. ':queues', q)\n"
    "    redis.call('ZREM', p .. 'delayed', member)\n"
    // A retry that is due waits in its queue like any job: its record says so, or a
    // delete or a `retry` by hand would look for it in the delayed set.
    "    local _, _, id = string.find(raw, '\"preforkd\":{\"id\":\"(%d+)\"}}$')\n"
    "    if id and redis.call('HGET', p .. 'job:' .. id, 'state') == 'retry' then\n"
    "      redis.call('HSET', p .. 'job:' .. id, 'state', 'queued')\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local out = {}\n"
    "local cut = false\n"
    "for qi = 8 + n_acks, #ARGV do\n"
    "  local q = ARGV[qi]\n"
    "  while #out < max_jobs do\n"
    "    local raw = redis.pcall('LPOP', ns .. ':queue:' .. q)\n"
    "    if type(raw) == 'table' and raw.err then wrong[q] = true; break end\n"
    "    if not raw then break end\n"
    "    local id, tracked\n"
    "    id, raw, tracked = with_id(p, q, raw, now, true)\n"
    "    local job = p .. 'job:' .. id\n"
    "    local extra = redis.call('HMGET', job, 'max_attempts', 'priority', 'suspect')\n"
    // A suspect job (its lease ran out once, see recover_script) is claimed alone:
    // a batch ends before it, or is only it when it comes first.
    "    if extra[3] then\n"
    "      cut = true\n"
    "      if #out > 0 then redis.call('LPUSH', ns .. ':queue:' .. q, raw); break end\n"
    "      redis.call('HDEL', job, 'suspect')\n"
    "    end\n"
    "    local entry = id .. '\\n' .. raw\n"
    "    redis.call('RPUSH', processing, entry)\n"
    "    local attempts = redis.call('HINCRBY', job, 'attempts', 1)\n"
    "    redis.call('HSET', job, 'state', 'running', 'locked_by', worker, 'started_at', now, 'queue', q)\n"
    "    redis.call('PERSIST', job)\n"
    "    out[#out + 1] = {q, entry, attempts, extra[1] or '0', extra[2] or '0', tracked and 1 or 0}\n"
    "    if cut then break end\n"
    "  end\n"
    // Strict priority: one claim never mixes a lower queue into a higher one's batch.
    "  if #out > 0 or cut then break end\n"
    "end\n"
    "for q in pairs(wrong) do out[#out + 1] = {'wrongtype', q} end\n"
    "redis.call('SET', p .. 'heartbeat:' .. worker, now, 'PX', lease)\n"
    "redis.call('SADD', p .. 'workers', worker)\n"
    "local nxt = redis.call('ZRANGE', p .. 'delayed', 0, 0, 'WITHSCORES')\n"
    "out[#out + 1] = nxt[2] or ''\n"
    "return out\n";

// Shared helper: deletes job `id` (its hash fields f = state, queue, payload,
// unique_key) and its entry where it waits: the delayed set (due later, or waiting to
// retry), else the queue's list (O(length): looked at only when the set has no entry).
// A dead or done job leaves the count of its state (NS:preforkd:dead|done). Resque's
// failure list and counters are history and keep theirs (resque-web clears them). A
// queue key of another type is no list to take an entry from, not an error.
#define PREFORKD_LUA_DELETE_JOB                                                       \
  "local function delete_job(ns, p, id, f)\n"                                        \
  "  local state, q, raw = f[1], f[2], f[3]\n"                                       \
  "  if q and raw and (state == 'queued' or state == 'retry') then\n"               \
  "    if redis.call('ZREM', p .. 'delayed', q .. '\\n' .. raw) == 0 then\n"        \
  "      redis.pcall('LREM', ns .. ':queue:' .. q, 1, raw)\n"                         \
  "    end\n"                                                                        \
  "  elseif q and (state == 'dead' or state == 'done') then\n"                        \
  "    if tonumber(redis.call('HGET', p .. state, q) or '0') > 0 then\n"              \
  "      redis.call('HINCRBY', p .. state, q, -1)\n"                                  \
  "    end\n"                                                                        \
  "  end\n"                                                                          \
  "  release_unique(p, f[4], id)\n"                                                  \
  "  redis.call('DEL', p .. 'job:' .. id)\n"                                         \
  "end\n"

// ARGV: ns holder now mode(done|retry|dead|dead_unrun|release) id error run_at failure_json keep_done
// (dead_unrun: dead, the attempt of this claim not counted: it never ran)
// Returns 1, or 0 when the lease was lost (the job was recovered and runs elsewhere).
const char* const finish_script =
    PREFORKD_LUA_RELEASE_UNIQUE
    "local ns, holder, now, mode, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]\n"
    "local p = ns .. ':preforkd:'\n"
    "local job = p .. 'job:' .. id\n"
    "local fields = redis.call('HMGET', job, 'queue', 'payload')\n"
    "local q, raw = fields[1], fields[2]\n"
    "if not raw then return 0 end\n"
    "if redis.call('LREM', p .. 'processing:' .. holder, 1, id .. '\\n' .. raw) == 0 then return 0 end\n"
    "if mode == 'retry' then\n"
    "  redis.call('ZADD', p .. 'delayed', ARGV[7], q .. '\\n' .. raw)\n"
    "  redis.call('HSET', job, 'state', 'retry', 'last_error', ARGV[6], 'run_at', ARGV[7],\n"
    "             'finished_at', now, 'locked_by', '')\n"
    "elseif mode == 'dead' or mode == 'dead_unrun' then\n"
    "  if mode == 'dead_unrun' then redis.call('HINCRBY', job, 'attempts', -1) end\n"
    "  redis.call('RPUSH', ns .. ':failed', ARGV[8])\n"
    "  redis.call('INCR', ns .. ':stat:failed')\n"
    "  redis.call('INCR', ns .. ':stat:processed')\n"
    "  redis.call('HINCRBY', p .. 'dead', q, 1)\n"
    "  redis.call('HSET', job, 'state', 'dead', 'last_error', ARGV[6], 'finished_at', now,\n"
    "             'locked_by', '', 'failure', ARGV[8])\n"
    "  release_unique(p, redis.call('HGET', job, 'unique_key'), id)\n"
    "elseif mode == 'done' then\n"
    // As an ack with a claim does (claim_script): an outage during the job sends its
    // result this way, and the unique key must not stay held for ever.
    "  redis.call('HSET', job, 'state', 'done', 'finished_at', now, 'locked_by', '', 'last_error', '')\n"
    "  redis.call('PEXPIRE', job, ARGV[9])\n"
    "  release_unique(p, redis.call('HGET', job, 'unique_key'), id)\n"
    "  redis.call('INCR', ns .. ':stat:processed')\n"
    "  redis.call('HINCRBY', p .. 'done', q, 1)\n"
    "else\n"
    "  redis.call('LPUSH', ns .. ':queue:' .. q, raw)\n"
    "  redis.call('HINCRBY', job, 'attempts', -1)\n"
    "  redis.call('HSET', job, 'state', 'queued', 'locked_by', '')\n"
    "end\n"
    "return 1\n";

// ARGV: ns now n, then per job: queue body run_at priority unique max_attempts
// (body: a JSON object without the preforkd member). Returns {id, duplicate(0|1)}...
const char* const enqueue_script =
    PREFORKD_LUA_WITH_ID
    "local ns, now, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local p = ns .. ':preforkd:'\n"
    "local out = {}\n"
    "for i = 0, n - 1 do\n"
    "  local b = 4 + i * 6\n"
    "  local q, body, run_at, priority, unique, max_attempts =\n"
    "    ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), ARGV[b + 4], ARGV[b + 5]\n"
    "  local existing = unique ~= '' and redis.call('GET', p .. 'unique:' .. unique)\n"
    "  if existing then\n"
    "    out[#out + 1] = {existing, 1}\n"
    "  else\n"
    "    local id, raw = with_id(p, q, body, now, false)\n"
    "    local job = p .. 'job:' .. id\n"
    "    redis.call('HSET', job, 'run_at', run_at, 'priority', priority, 'unique_key', unique,\n"
    "               'max_attempts', max_attempts)\n"
    "    if unique ~= '' then redis.call('SET', p .. 'unique:' .. unique, id) end\n"
    "    redis.call('SADD', ns .. ':queues', q)\n"
    "    if run_at > now then\n"
    "      redis.call('ZADD', p .. 'delayed', run_at, q .. '\\n' .. raw)\n"
    // Resque lists have no priority: a job above 0 jumps to the head of its queue.
    "    elseif priority > 0 then\n"
    "      redis.call('LPUSH', ns .. ':queue:' .. q, raw)\n"
    "    else\n"
    "      redis.call('RPUSH', ns .. ':queue:' .. q, raw)\n"
    "    end\n"
    "    out[#out + 1] = {id, 0}\n"
    "  end\n"
    "end\n"
    "return out\n";

// ARGV: ns now worker-to-recover-regardless... Recovers every worker whose heartbeat
// expired, and the listed ones: this host's dead processes, and, marked '~', the
// calling process's own lost connections (a claim it sent, gave up on after `timeout`,
// and that Redis ran once it answered again: the job was never started, so its attempt
// is given back and it is not suspect). Returns the jobs recovered as a flat list: id,
// last_error, id, last_error, ...
const char* const recover_script =
    "local ns, now = ARGV[1], ARGV[2]\n"
    "local p = ns .. ':preforkd:'\n"
    "local forced, unstarted = {}, {}\n"
    "for i = 3, #ARGV do\n"
    "  local a = ARGV[i]\n"
    "  if string.sub(a, 1, 1) == '~' then unstarted[string.sub(a, 2)] = true else forced[a] = true end\n"
    "end\n"
    "local recovered = {}\n"
    "for _, w in ipairs(redis.call('SMEMBERS', p .. 'workers')) do\n"
    "  if forced[w] or unstarted[w] or redis.call('EXISTS', p .. 'heartbeat:' .. w) == 0 then\n"
    "    local processing = p .. 'processing:' .. w\n"
    // Each job goes back marked suspect: from then on it is claimed alone (claim_script),
    // so a death is charged to the one job that caused it. Of a batch (prefetch) nobody
    // can tell which job was running: a worker that held several gives each its attempt
    // back.
    "    local held = redis.call('LLEN', processing)\n"
    "    local note = ''\n"
    "    if unstarted[w] then note = '; claimed on a connection its worker had already given up, never started: attempt not counted'\n"
    "    elseif held > 1 then note = ' with ' .. (held - 1) .. ' other job(s); attempt not counted, it runs alone next' end\n"
    "    while true do\n"
    "      local entry = redis.call('RPOP', processing)\n"
    "      if not entry then break end\n"
    "      local nl = string.find(entry, '\\n', 1, true)\n"
    "      local id, raw = string.sub(entry, 1, nl - 1), string.sub(entry, nl + 1)\n"
    "      local job = p .. 'job:' .. id\n"
    "      local q = redis.call('HGET', job, 'queue') or 'default'\n"
    "      redis.call('LPUSH', ns .. ':queue:' .. q, raw)\n"
    "      if (held > 1 or unstarted[w]) and tonumber(redis.call('HGET', job, 'attempts') or '0') > 0 then\n"
    "        redis.call('HINCRBY', job, 'attempts', -1)\n"
    "      end\n"
    "      if not unstarted[w] then redis.call('HSET', job, 'suspect', '1') end\n"
    "      local why = 'lease expired (held by ' .. w .. note .. ')'\n"
    "      redis.call('HSET', job, 'state', 'queued', 'locked_by', '', 'last_error', why)\n"
    "      table.insert(recovered, id)\n"
    "      table.insert(recovered, why)\n"
    "    end\n"
    "    redis.call('SREM', p .. 'workers', w)\n"
    "    redis.call('DEL', p .. 'heartbeat:' .. w)\n"
    "  end\n"
    "end\n"
    "return recovered\n";

// ARGV: ns id now. Returns 1, or an error reply when the job is not dead or retrying.
const char* const retry_now_script =
    "local ns, id, now = ARGV[1], ARGV[2], ARGV[3]\n"
    "local p = ns .. ':preforkd:'\n"
    "local job = p .. 'job:' .. id\n"
    "local f = redis.call('HMGET', job, 'state', 'queue', 'payload', 'unique_key')\n"
    "if not f[1] then return redis.error_reply('no job with id ' .. id) end\n"
    "if f[1] ~= 'dead' and f[1] ~= 'retry' then\n"
    "  return redis.error_reply('job ' .. id .. ' is ' .. f[1] .. ': only dead or retry-waiting jobs can be retried')\n"
    "end\n"
    // A dead job gave its unique key up: another job may hold it now (one per key may
    // wait or run, as on SQLite and PostgreSQL). Else the retried job takes it again.
    "local unique = f[4]\n"
    "if unique and unique ~= '' then\n"
    "  local holder = redis.call('GET', p .. 'unique:' .. unique)\n"
    "  if holder and holder ~= id then\n"
    "    local state = redis.call('HGET', p .. 'job:' .. holder, 'state') or 'queued'\n"
    "    return redis.error_reply('HELD ' .. holder .. ' ' .. state .. ' ' .. unique)\n"
    "  end\n"
    "  redis.call('SET', p .. 'unique:' .. unique, id)\n"
    "end\n"
    // A retry no longer in the delayed set was moved into its queue when it came due (by
    // a version that left its record saying retry): it waits there already.
    "local waiting = f[1] == 'retry' and redis.call('ZREM', p .. 'delayed', f[2] .. '\\n' .. f[3]) == 0\n"
    "if f[1] == 'dead' and tonumber(redis.call('HGET', p .. 'dead', f[2]) or '0') > 0 then\n"
    "  redis.call('HINCRBY', p .. 'dead', f[2], -1)\n"
    "end\n"
    "if not waiting then redis.call('RPUSH', ns .. ':queue:' .. f[2], f[3]) end\n"
    "redis.call('SADD', ns .. ':queues', f[2])\n"
    "redis.call('HSET', job, 'state', 'queued', 'attempts', 0, 'run_at', now, 'finished_at', '')\n"
    "redis.call('PERSIST', job)\n"
    "return 1\n";

// ARGV: ns id. Returns "deleted", "missing", or "running HOLDER" (plain replies: Redis
// puts a code of its own before the text of an error reply).
const char* const delete_script =
    PREFORKD_LUA_RELEASE_UNIQUE
    PREFORKD_LUA_DELETE_JOB
    "local ns, id = ARGV[1], ARGV[2]\n"
    "local p = ns .. ':preforkd:'\n"
    "local f = redis.call('HMGET', p .. 'job:' .. id, 'state', 'queue', 'payload', 'unique_key', 'locked_by')\n"
    "if not f[1] then return 'missing' end\n"
    "if f[1] == 'running' then return 'running ' .. (f[5] or '') end\n"
    "delete_job(ns, p, id, f)\n"
    "return 'deleted'\n";

// ARGV: ns queue states(",queued,dead,") id... Deletes those of the ids that are jobs of
// `queue` in one of `states` and not running. Returns how many.
const char* const delete_jobs_script =
    PREFORKD_LUA_RELEASE_UNIQUE
    PREFORKD_LUA_DELETE_JOB
    "local ns, queue, states = ARGV[1], ARGV[2], ARGV[3]\n"
    "local p = ns .. ':preforkd:'\n"
    "local deleted = 0\n"
    "for i = 4, #ARGV do\n"
    "  local f = redis.call('HMGET', p .. 'job:' .. ARGV[i], 'state', 'queue', 'payload', 'unique_key')\n"
    "  if f[1] and f[1] ~= 'running' and f[2] == queue and string.find(states, ',' .. f[1] .. ',', 1, true) then\n"
    "    delete_job(ns, p, ARGV[i], f)\n"
    "    deleted = deleted + 1\n"
    "  end\n"
    "end\n"
    "return deleted\n";

// ARGV: ns queue count. Takes up to `count` entries off the head of the queue's list
// and deletes them, with the record of each whose record says it waits there (a copy
// of a running job, pushed again by a Resque client, leaves the running job's alone).
// Returns how many entries it took: a whole list in one call would block the server.
const char* const drain_queue_script =
    PREFORKD_LUA_RELEASE_UNIQUE
    "local ns, queue, count = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
    "local p = ns .. ':preforkd:'\n"
    "local taken = 0\n"
    "while taken < count do\n"
    "  local raw = redis.pcall('LPOP', ns .. ':queue:' .. queue)\n"
    "  if type(raw) ~= 'string' then break end\n"
    "  taken = taken + 1\n"
    "  local _, _, id = string.find(raw, '\"preforkd\":{\"id\":\"(%d+)\"}}$')\n"
    "  if id then\n"
    "    local job = p .. 'job:' .. id\n"
    "    local f = redis.call('HMGET', job, 'state', 'queue', 'payload', 'unique_key')\n"
    "    if (f[1] == 'queued' or f[1] == 'retry') and f[2] == queue and f[3] == raw then\n"
    "      release_unique(p, f[4], id)\n"
    "      redis.call('DEL', job)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return taken\n";

}  // namespace preforkd::redis
