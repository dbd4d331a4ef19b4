// The SQL of the PostgreSQL source, written once per table: every statement the
// source prepares, with its parameters listed beside it. Times are the server's
// (now()), so the clocks of the hosts that share the table never matter.
#pragma once

#include <string>

#include "sources/postgres/pg_table.hpp"

namespace preforkd::postgres {

// The columns of a JobInfo, in read_info's order; times as epoch milliseconds.
extern const char* const job_columns;

struct Queries {
  // `prefetch`: the most jobs one claim_batch leases.
  explicit Queries(const TableName& table, int prefetch = 1);

  // "acks": the deferred completions, $n ids[] and $n+1 ages[] (ms since each finished).
  std::string claim_batch;    // $1 queues[], $2 worker, $3/$4 acks, $5 lease ms
                              //   -> id, queue, payload, attempts, max_attempts, priority, run_at us
  std::string claim_batch_one;  // the same, for one queue
  std::string claim;          // $1 queue, $2 worker, $3 lease ms -> id, payload, attempts, max_attempts, priority
  std::string reclaim;        // $1 channel -> one row per queue that got jobs back
  std::string prune;          // $1 keep_done ms
  std::string next_due;       // $1 queues[] -> ms until the next due job or lease expiry, or NULL
  std::string complete;       // $1 id, $2 worker
  std::string retry_later;    // $1 id, $2 worker, $3 error, $4 delay ms, $5 channel, $6/$7 acks
  std::string bury;           // $1 id, $2 worker, $3 error, $4/$5 acks, $6 attempts not counted (0|1)
  std::string release;        // $1 id, $2 worker, $3 channel, $4/$5 acks
  std::string extend_lease;   // $1 id, $2 worker, $3 lease ms, $4/$5 acks, $6 the job's holder
  std::string hand_back;      // $1 ids[] to give back, $2 worker, $3/$4 acks, $5 channel
  std::string insert;         // $1..$6 arrays (queue, payload, priority, run_at ms, max_attempts, unique_key)
  std::string holders;        // $1 unique keys[] -> unique_key, id of the jobs holding them
  std::string notify;         // $1 channel, $2 queues[]
  std::string stats;
  std::string get;            // $1 id
  std::string list;           // $1 queue or '', $2 state or '', $3 limit
  std::string retry_now;      // $1 id, $2 channel
  std::string remove;         // $1 id -> the id when deleted (not running)
  std::string remove_queue;   // $1 queue, $2 states ",queued,dead,", $3 at most -> count deleted
};

}  // namespace preforkd::postgres
