// The graphile-worker peer of bench/postgres (started by bench_postgres, which polls
// PostgreSQL itself).
//
//   node graphile_peer.js add  CONNINFO_URL N        installs graphile-worker's schema, then N
//                                                    jobs {n:i} of task "noop" with
//                                                    graphile_worker.add_jobs (chunks of 1000,
//                                                    one statement each), then exits
//   node graphile_peer.js work CONNINFO_URL C DEADLINE_S
//                                                    one process, run() with concurrency C and a
//                                                    no-op task; prints "start <CLOCK_MONOTONIC
//                                                    ns>" just before run() is called, runs until
//                                                    TERM (by pid) or DEADLINE_S seconds
//
// Defaults everywhere else (no localQueue, no completeJobBatchDelay, pollInterval 2000 ms,
// LISTEN/NOTIFY on, prepared statements on, pool of up to 10 connections). Only the
// logging is changed: graphile-worker logs one INFO line per completed job; the driver
// sets NO_LOG_SUCCESS=1 (graphile-worker's own switch for that line) and this logger
// keeps warnings and errors only (preforkd runs at log level warn).
// A completed job is deleted by graphile-worker: the driver polls for rows left in
// graphile_worker._private_jobs.
'use strict';
const { run, makeWorkerUtils, Logger } = require('graphile-worker');

const [mode, url, arg1, arg2] = process.argv.slice(2);

const logger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') console.error(`[${level}] ${message}`);
});

async function add(n) {
  const utils = await makeWorkerUtils({ connectionString: url, logger });
  try {
    await utils.migrate();
    await utils.withPgClient(async (client) => {
      for (let start = 0; start < n; start += 1000) {
        const end = Math.min(n, start + 1000) - 1;
        await client.query(
          `SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
             SELECT ROW('noop', json_build_object('n', i), NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
             FROM generate_series($1::int, $2::int) AS i ORDER BY i))`,
          [start, end]);
      }
    });
  } finally {
    await utils.release();
  }
}

async function work(concurrency, deadlineS) {
  setTimeout(() => process.exit(3), deadlineS * 1000);  // bounded, whatever happens
  // process.hrtime is uv_hrtime: CLOCK_MONOTONIC, the driver's clock.
  process.stdout.write(`start ${process.hrtime.bigint()}\n`);
  const runner = await run({
    connectionString: url,
    concurrency,
    noHandleSignals: true,
    logger,
    taskList: { noop: async () => {} },
  });
  const stop = async () => {
    await runner.stop();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await runner.promise;
}

if (mode === 'add') {
  add(Number(arg1)).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
} else if (mode === 'work') {
  work(Number(arg1), Number(arg2 || 600)).catch((e) => { console.error(e); process.exit(1); });
} else {
  console.error('usage: graphile_peer.js add URL N | work URL CONCURRENCY DEADLINE_S');
  process.exit(2);
}
