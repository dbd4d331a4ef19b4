// The BullMQ peer of bench/redis (started by bench_redis, which polls Redis itself).
//
//   node bullmq_peer.js add  PORT N              N jobs {n:i} on queue "bench" with addBulk
//                                                (chunks of 1000), then exits
//   node bullmq_peer.js work PORT DEADLINE_S     one process, 2 Worker instances, concurrency 5
//                                                each, no-op processor; prints
//                                                "start <CLOCK_MONOTONIC ns>" just before the
//                                                Workers are created, runs until killed (by pid)
//                                                or DEADLINE_S seconds, whichever comes first
//
// Defaults everywhere else (removeOnComplete unset: completed jobs are kept, like
// preforkd's keep_done); completion is counted by the driver with ZCARD bull:bench:completed.
'use strict';
const { Queue, Worker } = require('bullmq');

const [mode, portText, arg] = process.argv.slice(2);
const connection = { host: '127.0.0.1', port: Number(portText) };

async function add(n) {
  const queue = new Queue('bench', { connection });
  for (let start = 0; start < n; start += 1000) {
    const jobs = [];
    for (let i = start; i < Math.min(n, start + 1000); ++i) jobs.push({ name: 'noop', data: { n: i } });
    await queue.addBulk(jobs);
  }
  await queue.close();
}

function work(deadlineS) {
  setTimeout(() => process.exit(3), deadlineS * 1000);  // bounded, whatever happens
  // process.hrtime is uv_hrtime: CLOCK_MONOTONIC, the driver's clock.
  process.stdout.write(`start ${process.hrtime.bigint()}\n`);
  const workers = [];
  for (let i = 0; i < 2; ++i) {
    const w = new Worker('bench', async () => {}, { connection, concurrency: 5 });
    w.on('error', (e) => console.error('worker error:', e && e.message));
    workers.push(w);
  }
  const stop = async () => {
    await Promise.all(workers.map((w) => w.close()));
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (mode === 'add') {
  add(Number(arg)).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
} else if (mode === 'work') {
  work(Number(arg || 600));
} else {
  console.error('usage: bullmq_peer.js add PORT N | work PORT DEADLINE_S');
  process.exit(2);
}
