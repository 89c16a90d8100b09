/**
 * The graphile-worker row of the queue benchmark, the PostgreSQL counterpart of the BullMQ row: a
 * fresh database on the given server, graphile-worker's schema installed before the clock starts, W
 * worker processes each running a graphile-worker pool with concurrency C and a no-op task, and this
 * process adding N jobs with `addJobs` in batches of B (4 batches in flight, as the Kiris client
 * does). The pools use the batching graphile-worker documents for high throughput (a local queue of
 * C jobs, batched completions), so the row is its fast configuration, not its default one.
 * Graphile-worker deletes a job when it completes: the run ends when every job is added and none is left.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted, Schedule, type Scope } from "effect"
import { makeWorkerUtils, runMigrations } from "graphile-worker"
import { spawn, type ChildProcess } from "node:child_process"
import * as crypto from "node:crypto"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { peakRssOf, waitForLine } from "./_bullmq.js"

export interface GraphileResult {
  readonly rate: number
  readonly seconds: number
  /** Peak RSS (MiB) of the largest worker process. */
  readonly workerRssMb: number
  /** Connections each worker process's pool may open. */
  readonly poolSize: number
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

/** `url` with its database name replaced. */
const withDatabase = (url: string, database: string) => {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/** A new, empty database on `url`'s server, named `prefix_<random>`, dropped (connections and all) when the scope closes. */
export const freshDatabase = (url: string, prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.gen(function* () {
    const name = `${prefix}_${crypto.randomBytes(6).toString("hex")}`
    const admin = yield* PgClient.make({ url: Redacted.make(url), maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer))
    yield* admin.unsafe(`CREATE DATABASE ${name}`)
    // clients that end their pools without waiting are given a few seconds to go before FORCE cuts them off
    const connected = admin<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${name}`.pipe(
      Effect.map((rows) => rows[0]?.n ?? 0)
    )
    const drained = connected.pipe(
      Effect.repeat({ until: (n) => n === 0, schedule: Schedule.spaced("50 millis") }),
      Effect.timeout("5 seconds"),
      Effect.ignore
    )
    // (FORCE waits only a few seconds for the backends it terminates; a loaded machine may need another try)
    const drop = admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(Effect.retry({ times: 2 }))
    yield* Effect.addFinalizer(() =>
      Effect.zipRight(drained, drop).pipe(Effect.catchAllCause((cause) => Effect.logWarning(`could not drop the benchmark database ${name}`, cause)))
    )
    return withDatabase(url, name)
  }).pipe(Effect.orDie)

/** A graphile-worker process: concurrency C, a task that returns at once, errors only on stderr. */
const WORKER_SOURCE = `
const { run, Logger } = require(process.argv[1])
const [connectionString, concurrency, poolSize] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])]
const logger = new Logger(() => (level, message) => { if (level === "error") console.error(message) })
run({
  noHandleSignals: true,
  taskList: { noop: async () => {} },
  preset: {
    worker: {
      connectionString, concurrentJobs: concurrency, maxPoolSize: poolSize, logger,
      localQueue: { size: concurrency }, completeJobBatchDelay: 0, failJobBatchDelay: 0
    }
  }
}).then((runner) => {
  console.log("ready")
  process.on("SIGTERM", () => runner.stop().then(() => process.exit(0), () => process.exit(1)))
}, (e) => { console.error(e); process.exit(1) })
`

/** Runs the row against `databaseUrl`, an empty database of its own. */
export const runGraphile = async (opts: {
  databaseUrl: string
  tasks: number
  workers: number
  concurrency: number
  batch: number
  poolSize: number
  cwd: string
}): Promise<GraphileResult> => {
  const children: Array<ChildProcess> = []
  const connectionString = opts.databaseUrl
  await runMigrations({ connectionString })
  const utils = await makeWorkerUtils({ connectionString, maxPoolSize: 6 })
  try {
    const graphileMain = path.join(root, "node_modules", "graphile-worker")
    const workers = Array.from({ length: opts.workers }, () => {
      const child = spawn(process.execPath, ["-e", WORKER_SOURCE, graphileMain, connectionString, String(opts.concurrency), String(opts.poolSize)], {
        cwd: opts.cwd,
        stdio: ["ignore", "pipe", "inherit"]
      })
      children.push(child)
      return child
    })
    await Promise.all(workers.map((w) => waitForLine(w, /ready/, "graphile-worker process")))
    const remaining = () =>
      utils.withPgClient(async (client) => {
        const { rows } = await client.query<{ left: number; failed: number }>(
          "SELECT count(*)::int AS left, (count(*) FILTER (WHERE last_error IS NOT NULL))::int AS failed FROM graphile_worker._private_jobs"
        )
        return rows[0] ?? { left: 0, failed: 0 }
      })
    const started = performance.now()
    const batches = Array.from({ length: Math.ceil(opts.tasks / opts.batch) }, (_, b) =>
      Array.from({ length: Math.min(opts.batch, opts.tasks - b * opts.batch) }, (_, i) => ({
        identifier: "noop",
        payload: { i: b * opts.batch + i }
      }))
    )
    let next = 0
    let added = false
    const adders = Array.from({ length: 4 }, async () => {
      while (next < batches.length) await utils.addJobs(batches[next++]!)
    })
    const adding = Promise.all(adders).then(() => (added = true))
    let addError: unknown = undefined
    adding.catch((e: unknown) => (addError = e ?? new Error("adding jobs failed")))
    for (;;) {
      if (addError !== undefined) throw addError
      const finished = added
      const { left, failed } = await remaining()
      if (failed > 0) throw new Error(`${failed} graphile-worker jobs failed`)
      if (finished && left === 0) break
      await new Promise((r) => setTimeout(r, 20))
    }
    const seconds = (performance.now() - started) / 1000
    return {
      rate: opts.tasks / seconds,
      seconds,
      workerRssMb: Math.max(...workers.map((w) => peakRssOf(w.pid))),
      poolSize: opts.poolSize
    }
  } finally {
    for (const c of children.reverse()) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM")
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once("exit", r)))))
    await utils.release()
  }
}
