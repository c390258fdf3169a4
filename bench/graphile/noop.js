// No-op jobs per second through graphile-worker on PostgreSQL: enqueue N jobs in one bulk
// `addJobs` call, then run graphile-worker's own runner (`run()`) in this process at concurrency C
// with the batching its performance docs recommend, and time until every job has run and been
// completed (deleted) in the database. Prints one line of JSON to stdout.
//
//   node bench/graphile/noop.js --jobs 10000 --concurrency 24   # DATABASE_URL from scripts/lib/graphile.sh
//
// It drops and recreates the graphile_worker schema of the database at DATABASE_URL before
// each run: point it at a throwaway database only.
"use strict";

// graphile-worker reads this once, when it is loaded: no info line per completed job (as its
// own perfTest runs).
process.env.NO_LOG_SUCCESS = "1";

const { parseArgs } = require("node:util");
const { Logger, makeWorkerUtils, run } = require("graphile-worker");
const { version: workerVersion } = require("graphile-worker/package.json");
const { version: pgVersion } = require("pg/package.json");

const usage =
  "usage: node bench/graphile/noop.js [--jobs N] [--concurrency C] [--local-queue L] " +
  "[--complete-batch-delay MS] [--enqueue js|sql] [--timeout SECONDS]";
let values;
try {
  ({ values } = parseArgs({
    options: {
      jobs: { type: "string", default: "10000" },
      concurrency: { type: "string", default: "24" },
      "local-queue": { type: "string", default: "500" },
      "complete-batch-delay": { type: "string", default: "0" },
      enqueue: { type: "string", default: "js" },
      timeout: { type: "string", default: "600" },
      help: { type: "boolean", short: "h", default: false },
    },
  }));
} catch (e) {
  console.error(`${e.message}\n${usage}`);
  process.exit(2);
}
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const jobs = Number(values.jobs);
const concurrency = Number(values.concurrency);
// -1 turns each off, as in graphile-worker's own configuration (write --local-queue=-1).
const localQueueSize = Number(values["local-queue"]);
const completeJobBatchDelay = Number(values["complete-batch-delay"]);
const timeoutMs = Number(values.timeout) * 1000;
if (!(Number.isInteger(jobs) && jobs > 0 && Number.isInteger(concurrency) && concurrency > 0)) {
  console.error(`--jobs and --concurrency must be positive integers\n${usage}`);
  process.exit(2);
}
if (!["js", "sql"].includes(values.enqueue)) {
  console.error(`--enqueue is js (WorkerUtils.addJobs) or sql (graphile_worker.add_jobs)\n${usage}`);
  process.exit(2);
}
const connectionString = process.env.DATABASE_URL;
if (!connectionString) {
  console.error("DATABASE_URL is not set: source scripts/lib/graphile.sh first");
  process.exit(2);
}

// Warnings and errors on stderr; nothing below (as Sidekiq logs at WARN in bench/sidekiq).
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`[graphile-worker] ${level}: ${message}`);
});

// graphile-worker's documented settings for throughput (its performance page and perfTest):
// a local queue that locks a batch of jobs per fetch, completions batched into one statement
// per tick, prepared statements, and a pool one larger than the concurrency.
const preset = {
  worker: {
    connectionString,
    schema: "graphile_worker",
    concurrentJobs: concurrency,
    maxPoolSize: concurrency + 1,
    localQueue: { size: localQueueSize, refetchDelay: { durationMs: 10 } },
    completeJobBatchDelay,
    failJobBatchDelay: completeJobBatchDelay,
    preparedStatements: true,
    // Node's clock, passed to the add and fetch queries, instead of now() in PostgreSQL.
    useNodeTime: true,
    // Jobs already queued are fetched at start and on LISTEN/NOTIFY; the poll only finds
    // jobs scheduled for later, which this benchmark has none of.
    pollInterval: 2000,
    gracefulShutdownAbortTimeout: 2500,
  },
};

let done = 0;
const taskList = {
  noop: async (payload) => {
    if (typeof payload.i !== "number") throw new Error("payload without i");
    done += 1;
  },
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => Number(process.hrtime.bigint()) / 1e9;

async function main() {
  const utils = await makeWorkerUtils({ preset, logger });
  let runner;
  try {
    // A fresh schema per run, as bench/sidekiq flushes its Redis db: nothing left from a run
    // before (dead tuples, a queue, a task row), and the migrations run outside the timings.
    await utils.withPgClient((client) => client.query("drop schema if exists graphile_worker cascade"));
    await utils.migrate();
    const server = await utils.withPgClient((client) =>
      client.query(
        "select current_setting('server_version') as version, current_setting('synchronous_commit') as sync",
      ),
    );

    const specs = [];
    for (let i = 0; i < jobs; i++) specs.push({ identifier: "noop", payload: { i } });

    const t0 = now();
    if (values.enqueue === "js") {
      // The library's bulk enqueue: one add_jobs call that returns every job row.
      await utils.addJobs(specs);
    } else {
      // What graphile-worker's perfTest runs: the same SQL function, returning nothing.
      await utils.withPgClient((client) =>
        client.query(
          "select 1 from graphile_worker.add_jobs(array(select json_populate_recordset(null::graphile_worker.job_spec, $1::json)))",
          [JSON.stringify(specs)],
        ),
      );
    }
    const t1 = now();
    const queued = await utils.withPgClient((client) =>
      client.query("select count(*)::int as n from graphile_worker.jobs"),
    );
    if (queued.rows[0].n !== jobs) throw new Error(`enqueued ${queued.rows[0].n} jobs, expected ${jobs}`);

    const t1b = now();
    runner = await run({ preset, logger, taskList, noHandleSignals: true });
    const started = now() - t1b;
    const deadline = t1b + timeoutMs / 1000;
    // Every job has run...
    while (done < jobs && now() < deadline) await sleep(1);
    const performed = now() - t1b;
    // ...and has been completed (deleted) in the database, as jobkit's row waits for the
    // delete of the last batch: completions are batched, so the last ones land a tick later.
    for (;;) {
      const left = await utils.withPgClient((client) =>
        client.query("select count(*)::int as n from graphile_worker._private_jobs"),
      );
      if (left.rows[0].n === 0 || now() >= deadline) {
        if (left.rows[0].n !== 0 || done < jobs) {
          throw new Error(`ran ${done} of ${jobs} jobs, ${left.rows[0].n} left in the database after ${values.timeout} s`);
        }
        break;
      }
      await sleep(1);
    }
    const t2 = now();

    const enqueue = t1 - t0;
    const process_ = t2 - t1b;
    const total = enqueue + process_;
    const round = (x) => Math.round(x * 1e6) / 1e6;
    console.log(
      JSON.stringify({
        system: "graphile-worker",
        graphile_worker_version: workerVersion,
        node_version: process.versions.node,
        pg_version: pgVersion,
        postgres_version: server.rows[0].version,
        synchronous_commit: server.rows[0].sync,
        jobs,
        concurrency,
        local_queue: localQueueSize,
        complete_job_batch_delay: completeJobBatchDelay,
        enqueue: values.enqueue,
        enqueue_seconds: round(enqueue),
        process_seconds: round(process_),
        start_seconds: round(started),
        performed_seconds: round(performed),
        total_seconds: round(total),
        jobs_per_second: Math.round((jobs / total) * 10) / 10,
        enqueue_jobs_per_second: Math.round((jobs / enqueue) * 10) / 10,
        process_jobs_per_second: Math.round((jobs / process_) * 10) / 10,
      }),
    );
  } finally {
    if (runner) {
      await runner.stop();
      await runner.promise.catch(() => {});
    }
    await utils.release();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
