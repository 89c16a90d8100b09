/**
 * Swarm queue throughput, end to end, against a raw SQLite baseline. Usage:
 *   npm run bench -- queue [--tasks 50000] [--workers 4] [--concurrency 256] [--batch 1000] [--samples 500] [--profile DIR]
 *     [--heap-snapshot DIR] [--no-bullmq] [--database-url postgres://… [--no-graphile] [--graphile-pool 16]] [--stall 120]
 *
 * (a) raw better-sqlite3 (WAL, synchronous=NORMAL): enqueue → lease → ack, one transaction per step.
 * (b) Kiris: a `kiris serve` process, W `kiris worker --kinds noop` processes over TCP NDJSON RPC; a
 *     client enqueues N tasks with task.enqueueBatch and the workers lease and complete them.
 *     Then dispatch latency on an idle swarm: one task at a time, enqueue → the worker has it
 *     (`receivedAt - createdAt`, both stamped on this machine), p50/p99. Also the hub's peak RSS.
 * (c) BullMQ, when `redis-server` is installed: the same number of no-op jobs, W worker processes x C
 *     concurrency, against a private redis-server without persistence (see _bullmq.ts).
 * With `--database-url` (a PostgreSQL server on which this may create and drop databases):
 * (d) Kiris on PostgreSQL: (b) again, with the hub started with `--database-url` on a fresh database.
 * (e) graphile-worker: the same number of no-op jobs, W worker processes x C concurrency, on another
 *     fresh database on the same server (see _graphile.ts).
 * Every row prints its rate, its ratio to the others and its peak RSS. Each row's processes are
 * stopped before the next row starts.
 */
import Database from "better-sqlite3"
import { Effect } from "effect"
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { makeHubClient } from "../../src/client/HubClient.js"
import type { TaskId } from "../../src/domain/Ids.js"
import { EnqueueTask } from "../../src/domain/Task.js"
import { installHint, peakRssOf, redisInstalled, runBullmq } from "./_bullmq.js"
import { flag, textFlag } from "./_flags.js"
import { freshDatabase, runGraphile } from "./_graphile.js"

if (process.argv.includes("--help")) {
  console.log(`usage: npm run bench -- queue [--tasks 50000] [--workers 4] [--concurrency 256] [--batch 1000] [--samples 500]
    [--profile DIR] [--heap-snapshot DIR] [--no-bullmq] [--database-url URL [--no-graphile] [--graphile-pool 16]] [--stall 120]

Rows: (a) raw better-sqlite3; (b) kiris on SQLite; (c) BullMQ when redis-server is installed;
with --database-url: (d) kiris on PostgreSQL and (e) graphile-worker, each on a fresh database
created (and dropped) on that server, so the URL's user must be allowed to CREATE DATABASE.
A throwaway server: \`bash scripts/ci/postgres.sh\` (as root it installs Debian's postgresql
package when missing) prints a URL, e.g.
  npm run bench -- queue --database-url "$(bash scripts/ci/postgres.sh)"`)
  process.exit(0)
}

const N = flag("tasks", 50_000)
const W = flag("workers", 4)
const C = flag("concurrency", 256)
const B = flag("batch", 1000)
const SAMPLES = flag("samples", 500)
const profileAt = process.argv.indexOf("--profile")
/** Writes a V8 CPU profile of the hub there (open it in Chrome DevTools). */
const PROFILE_DIR = profileAt === -1 ? undefined : path.resolve(process.argv[profileAt + 1] ?? "profiles")
const snapshotAt = process.argv.indexOf("--heap-snapshot")
/** Writes a V8 heap snapshot of the hub there at the end (after the latency samples). */
const SNAPSHOT_DIR = snapshotAt === -1 ? undefined : path.resolve(process.argv[snapshotAt + 1] ?? "profiles")
const BULLMQ = !process.argv.includes("--no-bullmq")
/** A PostgreSQL server to add the Kiris-on-PostgreSQL and graphile-worker rows; each gets a fresh database there. */
const DATABASE_URL = textFlag("database-url")
const GRAPHILE = !process.argv.includes("--no-graphile")
/** Connections each graphile-worker process's pool may open (the server allows a few hundred in all). */
const GRAPHILE_POOL = flag("graphile-pool", 16)
/** A Kiris row fails when no task finishes for this many seconds. */
const STALL = flag("stall", 120)

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const bin = path.join(root, "bin", "kiris.js")
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kiris-bench-queue-"))

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })

// == (a) raw better-sqlite3 baseline
const baseline = () => {
  const db = new Database(path.join(tmp, "baseline.db"))
  db.pragma("journal_mode = WAL")
  db.pragma("synchronous = NORMAL")
  db.exec(`CREATE TABLE tasks (id INTEGER PRIMARY KEY, status TEXT NOT NULL, payload TEXT NOT NULL, worker TEXT,
    lease_expires_at INTEGER, fencing INTEGER NOT NULL DEFAULT 0, result TEXT, created_at INTEGER NOT NULL);
    CREATE INDEX tasks_queued ON tasks (status, id)`)
  const insert = db.prepare("INSERT INTO tasks (status, payload, created_at) VALUES ('queued', ?, ?)")
  const lease = db.prepare(`UPDATE tasks SET status = 'leased', worker = ?, lease_expires_at = ?, fencing = fencing + 1
    WHERE id = (SELECT id FROM tasks WHERE status = 'queued' ORDER BY id LIMIT 1) RETURNING id, fencing`)
  const ack = db.prepare("UPDATE tasks SET status = 'done', result = ? WHERE id = ? AND fencing = ? AND status = 'leased'")
  // Date.now: the baseline stamps rows as a plain better-sqlite3 program would
  const enqueueTx = db.transaction((i: number) => insert.run(JSON.stringify({ i }), Date.now()))
  const leaseTx = db.transaction(() => lease.get("w1", Date.now() + 300_000) as { id: number; fencing: number } | undefined)
  const ackTx = db.transaction((id: number, fencing: number) => ack.run("{}", id, fencing))
  const started = performance.now()
  for (let i = 0; i < N; i++) {
    enqueueTx(i)
    const leased = leaseTx()
    if (leased === undefined) throw new Error("nothing to lease")
    ackTx(leased.id, leased.fencing)
  }
  const seconds = (performance.now() - started) / 1000
  const done = (db.prepare("SELECT count(*) AS n FROM tasks WHERE status = 'done'").get() as { n: number }).n
  db.close()
  if (done !== N) throw new Error(`baseline finished ${done} of ${N}`)
  return N / seconds
}

// == (b) processes
const children: Array<ChildProcess> = []
const launch = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}, nodeFlags: ReadonlyArray<string> = []) => {
  const child = spawn(process.execPath, [...nodeFlags, bin, ...args], {
    cwd: tmp,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"]
  })
  children.push(child)
  let out = ""
  child.stdout!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-10_000)))
  const waitFor = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = out.match(pattern)
        if (m) {
          child.stdout!.off("data", check)
          resolve(m)
        }
      }
      child.stdout!.on("data", check)
      child.once("exit", (code) => reject(new Error(`${args[0]} exited (${code}) before printing ${pattern}:\n${out}`)))
      check()
    })
  return { child, waitFor }
}

const peakRss = peakRssOf

/** Stops processes (SIGTERM) and waits for them to exit. */
const stop = (processes: ReadonlyArray<ChildProcess>) =>
  Promise.all(
    processes.map((c) =>
      c.exitCode !== null || c.signalCode !== null
        ? undefined
        : new Promise((r) => {
            c.once("exit", r)
            c.kill("SIGTERM")
          })
    )
  )

/** (b), or (d) with a database URL: a hub, its workers, the throughput run and the latency samples; stops them after. */
const endToEnd = (name: string, databaseUrl: string | undefined) =>
  Effect.gen(function* () {
    const dataDir = path.join(tmp, name)
    const started = children.length
    yield* Effect.addFinalizer(() => Effect.promise(() => stop(children.slice(started))))
    const hub = launch(
      ["serve", "--port", "0", "--tcp-port", "0", "--data-dir", dataDir, ...(databaseUrl === undefined ? [] : ["--database-url", databaseUrl])],
      {},
      [
        ...(PROFILE_DIR === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", PROFILE_DIR]),
        ...(SNAPSHOT_DIR === undefined ? [] : ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${SNAPSHOT_DIR}`])
      ]
    )
    const port = Number((yield* Effect.promise(() => hub.waitFor(/tcp=[\d.]+:(\d+)/)))[1])
    const adminKey = fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim()
    const target = { transport: "tcp" as const, host: "127.0.0.1", port }
    const admin = yield* makeHubClient(target, adminKey)
    const projectId = (yield* admin.project.create({ name: "bench" })).id
    const workerKey = (yield* admin.key.create({ name: "bench workers", scopes: ["worker"] })).key
    const workers = Array.from({ length: W }, (_, i) =>
      launch(
        [
          "worker",
          "--hub",
          `127.0.0.1:${port}`,
          "--kinds",
          "noop",
          "--concurrency",
          String(C),
          "--quiet",
          "--name",
          `bench-${i + 1}`,
          "--data-dir",
          path.join(tmp, `${name}-w${i + 1}`)
        ],
        { KIRIS_TOKEN: workerKey }
      )
    )
    yield* Effect.promise(() => Promise.all(workers.map((w) => w.waitFor(/connected as/))))

    const stats = () => admin.task.stats({ projectId })
    const startedAt = performance.now()
    const batches = Array.from({ length: Math.ceil(N / B) }, (_, b) =>
      Array.from({ length: Math.min(B, N - b * B) }, (_, i) => EnqueueTask.make({ projectId, kind: "noop", payload: { i: b * B + i } }))
    )
    let enqueuedAt = 0
    yield* Effect.forEach(batches, (tasks) => admin.task.enqueueBatch({ tasks }), { concurrency: 4, discard: true }).pipe(
      Effect.tap(() => Effect.sync(() => (enqueuedAt = performance.now()))),
      Effect.fork
    )
    let progress = { done: -1, at: performance.now() }
    for (;;) {
      const s = yield* stats()
      if (s.done >= N) break
      if (s.failed + s.dead > 0) return yield* Effect.dieMessage(`${s.failed + s.dead} tasks failed`)
      if (s.done !== progress.done) progress = { done: s.done, at: performance.now() }
      else if (performance.now() - progress.at > STALL * 1000) {
        return yield* Effect.dieMessage(`${name}: no task finished for ${STALL} s; stats ${JSON.stringify(s)}`)
      }
      yield* Effect.sleep("20 millis")
    }
    const seconds = (performance.now() - startedAt) / 1000
    const enqueueSeconds = (enqueuedAt - startedAt) / 1000
    const latencies: Array<number> = []
    for (let i = 0; i < SAMPLES; i++) {
      const task = yield* admin.task.enqueue({ projectId, kind: "noop", payload: { sample: i } })
      const [done] = yield* admin.task.wait({ taskIds: [task.id as TaskId], timeoutMs: 10_000 })
      const result = done?.result as { receivedAt: number; createdAt: number } | undefined
      if (done?.status !== "done" || result === undefined) return yield* Effect.dieMessage(`sample ${i} did not finish: ${done?.status}`)
      latencies.push(result.receivedAt - result.createdAt)
    }
    latencies.sort((a, b) => a - b)
    const rssMb = peakRss(hub.child.pid)
    const workerRssMb = Math.max(...workers.map((w) => peakRss(w.child.pid)))
    if (SNAPSHOT_DIR !== undefined) {
      // last: the hub answers nothing (not even pings) while it writes the snapshot
      fs.mkdirSync(SNAPSHOT_DIR, { recursive: true })
      const before = new Set(fs.readdirSync(SNAPSHOT_DIR))
      hub.child.kill("SIGUSR2")
      let size = -1
      for (let stable = 0; stable < 3;) {
        yield* Effect.sleep("500 millis")
        const file = fs.readdirSync(SNAPSHOT_DIR).find((f) => !before.has(f) && f.endsWith(".heapsnapshot"))
        const now = file === undefined ? -1 : fs.statSync(path.join(SNAPSHOT_DIR, file)).size
        stable = now > 0 && now === size ? stable + 1 : 0
        size = now
      }
      console.log(`    heap snapshot of the hub written to ${SNAPSHOT_DIR}`)
    }
    return { rate: N / seconds, seconds, enqueueSeconds, latencies, rssMb, workerRssMb }
  }).pipe(Effect.scoped)

type EndToEnd = Effect.Effect.Success<ReturnType<typeof endToEnd>>

const printEndToEnd = (e2e: EndToEnd) => {
  console.log(
    `    dispatch latency, idle swarm, ${SAMPLES} samples: p50 ${fmt(percentile(e2e.latencies, 50), 1)} ms, p99 ${fmt(percentile(e2e.latencies, 99), 1)} ms, max ${fmt(e2e.latencies.at(-1) ?? NaN, 1)} ms`
  )
  console.log(`    peak RSS (VmHWM): hub ${fmt(e2e.rssMb, 1)} MiB; largest worker ${fmt(e2e.workerRssMb, 1)} MiB`)
}

/** (d) and (e), on fresh databases of the server at `url`. */
const postgres = async (url: string, sqlite: EndToEnd) => {
  const redacted = (() => {
    const u = new URL(url)
    if (u.password !== "") u.password = "***"
    return u.toString()
  })()
  console.log(`PostgreSQL server: ${redacted} (each row on a fresh database, dropped after)`)
  // a failed (d) is reported and (e) still runs; the benchmark then exits 1
  const pg = await Effect.runPromise(Effect.scoped(Effect.flatMap(freshDatabase(url, "kiris_bench_queue"), (db) => endToEnd("hub-pg", db)))).catch(
    (e: unknown) => {
      process.exitCode = 1
      console.log(`(d) kiris on PostgreSQL over TCP RPC: FAILED: ${e instanceof Error ? e.message : String(e)}`)
      return undefined
    }
  )
  if (pg !== undefined) {
    console.log(
      `(d) kiris on PostgreSQL over TCP RPC:         ${fmt(pg.rate)} tasks/s (${fmt(pg.seconds, 2)} s; enqueueing took ${fmt(pg.enqueueSeconds, 2)} s)`
    )
    console.log(`    ratio kiris-pg / kiris-sqlite: ${fmt(pg.rate / sqlite.rate, 2)}`)
    printEndToEnd(pg)
  }
  if (!GRAPHILE) return console.log("(e) graphile-worker: skipped (--no-graphile)")
  const graphile = await Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(freshDatabase(url, "kiris_bench_graphile"), (db) =>
        Effect.promise(() => runGraphile({ databaseUrl: db, tasks: N, workers: W, concurrency: C, batch: B, poolSize: GRAPHILE_POOL, cwd: tmp }))
      )
    )
  )
  console.log(`(e) graphile-worker on the same server:      ${fmt(graphile.rate)} tasks/s (${fmt(graphile.seconds, 2)} s)`)
  console.log(
    `    ratio kiris-pg / graphile: ${pg === undefined ? "n/a" : fmt(pg.rate / graphile.rate, 2)}; kiris-sqlite / graphile: ${fmt(sqlite.rate / graphile.rate, 2)}`
  )
  console.log(
    `    peak RSS (VmHWM): largest worker ${fmt(graphile.workerRssMb, 1)} MiB (pool of ${graphile.poolSize} connections, local queue of ${C} jobs per process)`
  )
  console.log("    the PostgreSQL server's own memory is not counted in (d) or (e)")
}

const main = async () => {
  // the processes run the compiled program: bring dist/ up to date with src/ first
  const build = path.join(root, "scripts", "build.mjs")
  if (fs.existsSync(build) && spawnSync(process.execPath, [build, "--quiet"], { cwd: root, stdio: "inherit" }).status !== 0) {
    throw new Error("building dist/ failed")
  }
  console.log(`queue benchmark: ${fmt(N)} tasks; ${W} worker processes x ${C} slots; enqueue batches of ${B}; ${os.cpus().length} CPUs`)
  const raw = baseline()
  const rawRssMb = (process.resourceUsage().maxRSS * 1024) / 1024 / 1024
  console.log(`(a) raw better-sqlite3, 3 transactions per task: ${fmt(raw)} tasks/s; peak RSS ${fmt(rawRssMb, 1)} MiB (this process)`)
  const e2e = await Effect.runPromise(endToEnd("hub", undefined))
  console.log(
    `(b) kiris end to end over TCP RPC:            ${fmt(e2e.rate)} tasks/s (${fmt(e2e.seconds, 2)} s; enqueueing took ${fmt(e2e.enqueueSeconds, 2)} s)`
  )
  console.log(`    ratio kiris / raw: ${fmt(e2e.rate / raw, 2)}`)
  printEndToEnd(e2e)
  if (!BULLMQ) console.log("(c) BullMQ: skipped (--no-bullmq)")
  else if (!redisInstalled()) console.log(`(c) BullMQ: skipped, redis-server not found; ${installHint}`)
  else {
    const bull = await runBullmq({ tasks: N, workers: W, concurrency: C, batch: B, tmp })
    console.log(`(c) BullMQ over a private redis-server:      ${fmt(bull.rate)} tasks/s (${fmt(bull.seconds, 2)} s)`)
    console.log(`    ratio kiris / bullmq: ${fmt(e2e.rate / bull.rate, 2)}; bullmq / raw: ${fmt(bull.rate / raw, 2)}`)
    console.log(`    peak RSS (VmHWM): redis-server ${fmt(bull.redisRssMb, 1)} MiB; largest worker ${fmt(bull.workerRssMb, 1)} MiB`)
  }
  if (DATABASE_URL === undefined) console.log("(d) kiris on PostgreSQL, (e) graphile-worker: skipped, no --database-url (see --help)")
  else await postgres(DATABASE_URL, e2e)
}

try {
  await main()
} finally {
  await stop(children)
  fs.rmSync(tmp, { recursive: true, force: true })
}
