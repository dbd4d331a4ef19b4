// The Lua scripts that make each step of the Redis job lifecycle atomic on the server:
// claim (with the previous jobs' acks and the move of due delayed jobs, in one round
// trip), finish (retry / dead / release), enqueue, recover (dead workers' processing
// lists), retry_now and the deletes. Keys, all under the namespace NS:
//   NS:queues, NS:queue:Q                 Resque's queue set and lists (job JSON)
//   NS:failed, NS:stat:processed|failed   Resque's failure list and counters
//   NS:preforkd:processing:WORKER         jobs leased to WORKER ("ID\n" + job JSON)
//   NS:preforkd:heartbeat:WORKER          expires `lease` after the worker's last sign
//   NS:preforkd:workers                   workers that may hold a processing list
//   NS:preforkd:delayed                   zset run_at -> "QUEUE\n" + job JSON
//   NS:preforkd:job:ID                    hash: queue, payload, state, attempts, ...;
//                                         suspect=1 while it waits to be claimed alone
//   NS:preforkd:unique:KEY                id of the queued/running job holding KEY
//   NS:preforkd:next_id, NS:preforkd:done|dead (hash queue -> count)
// A job JSON carries its id as a last member, "preforkd":{"id":"ID"}, appended to what
// the Resque client wrote (never re-encoded, so big numbers and key order survive).
#pragma once

namespace preforkd::redis {

extern const char* const claim_script;
extern const char* const finish_script;
extern const char* const enqueue_script;
extern const char* const recover_script;
extern const char* const retry_now_script;
extern const char* const delete_script;
extern const char* const delete_jobs_script;
extern const char* const drain_queue_script;

}  // namespace preforkd::redis
