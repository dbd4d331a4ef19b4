// The SQL text of each statement for one job table (see pg_queries.hpp).
#include "sources/postgres/pg_queries.hpp"

namespace preforkd::postgres {
namespace {


std::string millis(const std::string& column) {
  return "(extract(epoch FROM " + column + ") * 1000)::bigint";
}

// The lease guard of every report from a worker: a worker whose lease ran out and was
// given to another must not touch the other's run.
constexpr const char* leased_by_worker = " WHERE id = $1::bigint AND locked_by = $2 AND state = 'running'";

// `state = 'running'` for a statement that names its rows by id (an array of them):
// written so that it does not match the predicate of the partial index TABLE_lease,
// which the planner (stats: hardly any running rows) preferred to the primary key,
// though between vacuums that index is mostly dead entries of jobs done since: ~20x
// the pages per claim in a busy drain. state is NOT NULL, so coalesce changes nothing.
constexpr const char* still_running = "coalesce(state, '') = 'running'";

// Deferred acks: the completions a worker noted since its last write, marked done by a
// CTE of whatever statement it sends next. `ids` and `ages` are parameters (bigint[]):
// the job ids and how many milliseconds ago each finished, so finished_at is still the
// server's clock. Same guard as every report ($2 is the worker in each statement).
// `id = ANY(...)`, not a join with unnest(): the join's plan was a hash over a scan.
std::string acks_cte(const std::string& t, const std::string& ids, const std::string& ages) {
  return "acked AS (UPDATE " + t + " SET state = 'done', locked_by = NULL, lease_until = NULL, "
         "finished_at = now() - (" + ages + "::bigint[])[array_position(" + ids + "::bigint[], id)] "
         "* interval '1 millisecond', last_error = NULL "
         "WHERE id = ANY(" + ids + "::bigint[]) AND locked_by = $2 AND " + still_running + ")";
}

// The rows of `picked` (id, suspect and the columns of `order`) a batch may take: those
// before the first suspect job (one whose lease ran out before), or that job alone
// when it comes first. Rows left out are only locked until the statement ends.
std::string kept_cte(const std::string& order) {
  return "kept AS (SELECT id FROM (SELECT id, row_number() OVER w AS rn, "
         "count(*) FILTER (WHERE suspect) OVER w AS seen FROM picked "
         "WINDOW w AS (ORDER BY " + order + " ROWS UNBOUNDED PRECEDING)) r WHERE seen = 0 OR rn = 1)";
}

}  // namespace

const char* const job_columns =
    "id, queue, payload, state, priority, attempts, max_attempts, coalesce(unique_key, ''), "
    "coalesce(last_error, ''), coalesce(locked_by, ''), "
    "(extract(epoch FROM created_at) * 1000)::bigint, (extract(epoch FROM run_at) * 1000)::bigint, "
    "(extract(epoch FROM started_at) * 1000)::bigint, (extract(epoch FROM finished_at) * 1000)::bigint, "
    "(extract(epoch FROM lease_until) * 1000)::bigint";

Queries::Queries(const TableName& table, int prefetch) {
  const std::string t = table.qualified();
  // The batch size is written into the text, not a parameter: with `LIMIT $n` the
  // generic plan assumed a tenth of the table and chose a scan and sort of every due
  // row over the index (8x the server time per claim in a drain).
  const std::string limit = "LIMIT " + std::to_string(prefetch);
  // One round trip: write the noted completions (acked), lock up to `prefetch` due rows
  // nobody else is claiming (SKIP LOCKED: concurrent workers never wait for each other)
  // and lease them. Queues in strict order: the batch takes what queues[0] has before
  // looking further; each LATERAL walks one queue's `due` index. RETURNING promises no
  // order: the caller sorts the batch (queue, priority, run_at in microseconds, id).
  // The ids go through an array, so the UPDATE finds its rows by primary key (joined
  // with the CTE, it hashed a scan of the whole table). With several queues, rows of
  // the later ones may stay locked (not leased) until the statement ends: a worker that
  // skips them looks again shortly (next_due).
  claim_batch = "WITH " + acks_cte(t, "$3", "$4") + ", picked AS MATERIALIZED (SELECT c.id, c.suspect, q.ord, "
          "c.priority, c.run_at FROM unnest($1::text[]) WITH ORDINALITY AS q(name, ord), "
          "LATERAL (SELECT id, priority, run_at, suspect FROM " + t +
          " WHERE queue = q.name AND state IN ('queued', 'retry') AND run_at <= now() "
          "ORDER BY priority DESC, run_at, id " + limit + " FOR UPDATE SKIP LOCKED) c "
          "ORDER BY q.ord, c.priority DESC, c.run_at, c.id " + limit + "), " +
          kept_cte("ord, priority DESC, run_at, id") + " "
          "UPDATE " + t + " SET state = 'running', attempts = attempts + 1, locked_by = $2, "
          "lease_until = now() + $5::bigint * interval '1 millisecond', started_at = now(), suspect = false "
          "WHERE id = ANY(ARRAY(SELECT id FROM kept)) "
          "RETURNING id, queue, payload, attempts, max_attempts, priority, "
          "(extract(epoch FROM run_at) * 1000000)::bigint";
  // The same for a pool with one queue: no unnest, LATERAL or sort ($1 queues[] of one).
  // With prefetch 1, `id = (SELECT ...)`: in bench/postgres that ran in about 60% of
  // the time of `id = ANY(ARRAY(SELECT ...))` per call; a job alone needs no cut.
  const std::string due_in_first_queue = " WHERE queue = ($1::text[])[1] AND state IN ('queued', 'retry') "
                                         "AND run_at <= now() ORDER BY priority DESC, run_at, id " + limit +
                                         " FOR UPDATE SKIP LOCKED";
  const std::string lease_them = " SET state = 'running', attempts = attempts + 1, locked_by = $2, "
                                 "lease_until = now() + $5::bigint * interval '1 millisecond', "
                                 "started_at = now(), suspect = false ";
  const std::string returning = "RETURNING id, queue, payload, attempts, max_attempts, priority, "
                                "(extract(epoch FROM run_at) * 1000000)::bigint";
  claim_batch_one =
      prefetch == 1
          ? "WITH " + acks_cte(t, "$3", "$4") + " UPDATE " + t + lease_them + "WHERE id = (SELECT id FROM " + t +
                due_in_first_queue + ") " + returning
          : "WITH " + acks_cte(t, "$3", "$4") + ", picked AS MATERIALIZED (SELECT id, suspect, priority, run_at FROM " +
                t + due_in_first_queue + "), " + kept_cte("priority DESC, run_at, id") + " UPDATE " + t +
                lease_them + "WHERE id = ANY(ARRAY(SELECT id FROM kept)) " + returning;
  // One job from one queue: the source no longer sends it (claim_batch does this and
  // more); kept, with `complete`, for bench/postgres's raw loop of a two-statement job.
  claim = "UPDATE " + t +
          " SET state = 'running', attempts = attempts + 1, locked_by = $2, "
          "lease_until = now() + $3::bigint * interval '1 millisecond', started_at = now() "
          "WHERE id = (SELECT id FROM " + t +
          " WHERE queue = $1 AND state IN ('queued', 'retry') AND run_at <= now() "
          "ORDER BY priority DESC, run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
          "RETURNING id, payload, attempts, max_attempts, priority";
  // Leases that ran out: their worker died or hung. Back to the queue, marked suspect:
  // from then on each is claimed alone (kept_cte), so a death is charged to the one job
  // that caused it. The attempt was counted at the claim, so a job that keeps killing its
  // worker ends dead; but of a batch (prefetch) nobody can tell which job was running, so
  // the jobs of a worker that held several get their attempt back.
  reclaim = "WITH held AS (SELECT locked_by, count(*) AS n FROM " + t +
            " WHERE state = 'running' AND lease_until < now() GROUP BY locked_by), "
            "expired AS (UPDATE " + t + " AS j SET state = 'queued', locked_by = NULL, lease_until = NULL, "
            "suspect = true, "
            "attempts = CASE WHEN held.n > 1 THEN greatest(j.attempts - 1, 0) ELSE j.attempts END, "
            "last_error = 'lease expired (held by ' || coalesce(j.locked_by, '?') || CASE WHEN held.n > 1 "
            "THEN ' with ' || (held.n - 1) || ' other job(s); attempt not counted, it runs alone next' "
            "ELSE '' END || ')' FROM held "
            "WHERE j.state = 'running' AND j.lease_until < now() AND j.locked_by IS NOT DISTINCT FROM held.locked_by "
            "RETURNING j.id, j.queue, j.last_error), "
            "notified AS (SELECT pg_notify($1, queue) FROM (SELECT DISTINCT queue FROM expired) q) "
            // Each job taken back, for the log; joined with the notifications so that
            // they are sent (a CTE nobody reads is not run).
            "SELECT e.id, e.last_error FROM expired e, (SELECT count(*) FROM notified) n";
  prune = "DELETE FROM " + t +
          " WHERE state = 'done' AND finished_at < now() - $1::bigint * interval '1 millisecond'";
  next_due = "SELECT " + millis("least((SELECT min(n.run_at) FROM unnest($1::text[]) AS q(name), "
                                "LATERAL (SELECT run_at FROM " + t +
                                " WHERE queue = q.name AND state IN ('queued', 'retry') "
                                "ORDER BY run_at LIMIT 1) n), "
                                "(SELECT min(lease_until) FROM " + t +
                                " WHERE state = 'running')) - now()");
  // A job leased under another name (Job::lease_holder): not deferred.
  complete = "UPDATE " + t +
             " SET state = 'done', locked_by = NULL, lease_until = NULL, finished_at = now(), "
             "last_error = NULL" + leased_by_worker;
  // Every report below also writes the noted completions (acks, two parameters).
  // retry and release wake the idle workers: the job is (or soon will be) due again.
  retry_later = "WITH " + acks_cte(t, "$6", "$7") + ", j AS (UPDATE " + t +
                " SET state = 'retry', locked_by = NULL, lease_until = NULL, finished_at = now(), "
                "last_error = $3, run_at = now() + $4::bigint * interval '1 millisecond'" +
                leased_by_worker + " RETURNING queue) SELECT pg_notify($5, queue) FROM j";
  bury = "WITH " + acks_cte(t, "$4", "$5") + " UPDATE " + t +
         " SET state = 'dead', locked_by = NULL, lease_until = NULL, finished_at = now(), "
         "last_error = $3, attempts = attempts - $6::int" + leased_by_worker;
  release = "WITH " + acks_cte(t, "$4", "$5") + ", j AS (UPDATE " + t +
            " SET state = 'queued', locked_by = NULL, lease_until = NULL, "
            "attempts = greatest(attempts - 1, 0), started_at = NULL, finished_at = now()" +
            leased_by_worker + " RETURNING queue) SELECT pg_notify($3, queue) FROM j";
  // Every job this worker holds: the running one (whoever $6 names as its holder), the
  // prefetched batch behind it and the completions not yet written. The acked rows are
  // left out: a statement must not update one row twice.
  extend_lease = "WITH " + acks_cte(t, "$4", "$5") + " UPDATE " + t +
                 " SET lease_until = now() + $3::bigint * interval '1 millisecond' "
                 "WHERE state = 'running' AND (locked_by = $2 OR (id = $1::bigint AND locked_by = $6)) "
                 "AND id <> ALL($4::bigint[])";
  // A worker that stops (or whose batch outlived its lease): write the noted
  // completions, give back the claimed jobs it never started, attempt not counted.
  hand_back = "WITH " + acks_cte(t, "$3", "$4") + ", j AS (UPDATE " + t +
              " SET state = 'queued', locked_by = NULL, lease_until = NULL, "
              "attempts = greatest(attempts - 1, 0), started_at = NULL, finished_at = now() "
              "WHERE id = ANY($1::bigint[]) AND locked_by = $2 AND " + still_running + " RETURNING queue) "
              "SELECT pg_notify($5, queue) FROM (SELECT DISTINCT queue FROM j) q";
  // Ids are drawn in input order, so FIFO within a priority holds for a batch too. A
  // row whose unique key is held already is skipped (ON CONFLICT over the partial
  // unique index); its holder is looked up afterwards (holders).
  insert = "WITH seq AS MATERIALIZED (SELECT pg_get_serial_sequence('" + t +
           "', 'id')::regclass AS name), "
           "input AS MATERIALIZED (SELECT nextval((SELECT name FROM seq)) AS id, u.* FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[], "
           "$5::int[], $6::text[]) WITH ORDINALITY AS u(queue, payload, priority, run_at_ms, "
           "max_attempts, unique_key, ord)), "
           "inserted AS (INSERT INTO " + t +
           " (id, queue, payload, priority, run_at, max_attempts, unique_key, created_at) "
           "SELECT id, queue, payload, priority, "
           "coalesce(to_timestamp(run_at_ms::float8 / 1000), now()), max_attempts, unique_key, now() "
           "FROM input ORDER BY ord "
           "ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL "
           "AND state IN ('queued', 'running', 'retry') DO NOTHING RETURNING id) "
           "SELECT i.id, i.unique_key, ins.id IS NULL FROM input i "
           "LEFT JOIN inserted ins ON ins.id = i.id ORDER BY i.ord";
  holders = "SELECT unique_key, id FROM " + t +
            " WHERE unique_key = ANY($1::text[]) AND state IN ('queued', 'running', 'retry')";
  notify = "SELECT pg_notify($1, q) FROM unnest($2::text[]) AS q";
  stats = "SELECT queue, state, count(*) FROM " + t + " GROUP BY queue, state ORDER BY queue";
  get = std::string("SELECT ") + job_columns + " FROM " + t + " WHERE id = $1::bigint";
  list = std::string("SELECT ") + job_columns + " FROM " + t +
         " WHERE ($1 = '' OR queue = $1) AND ($2 = '' OR state = $2) ORDER BY id LIMIT $3::bigint";
  retry_now = "WITH j AS (UPDATE " + t +
              " SET state = 'queued', attempts = 0, run_at = now(), finished_at = NULL "
              "WHERE id = $1::bigint AND state IN ('dead', 'retry') RETURNING queue) "
              "SELECT pg_notify($2, queue) FROM j";
  remove = "DELETE FROM " + t + " WHERE id = $1::bigint AND state <> 'running' RETURNING id";
  // SKIP LOCKED: a row a worker is claiming is passed over (it is about to run), never
  // waited for. A plain DELETE over the queue waited for a claim that, writing the
  // worker's previous results in the same statement, waited for a row the DELETE held:
  // a deadlock, and one of the two failed.
  remove_queue = "WITH j AS (DELETE FROM " + t + " WHERE id IN (SELECT id FROM " + t +
                 " WHERE queue = $1 AND state <> 'running' AND strpos($2, ',' || state || ',') > 0 "
                 "LIMIT $3::bigint FOR UPDATE SKIP LOCKED) RETURNING 1) SELECT count(*) FROM j";
}

}  // namespace preforkd::postgres
