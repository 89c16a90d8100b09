/**
 * Swarm queue throughput, end to end, against a raw SQLite baseline. Usage:
 *   npm run bench -- queue [--tasks 50000] [--workers 4] [--concurrency 256] [--batch 1000] [--samples 500] [--profile DIR]
 *     [--heap-snapshot DIR] [--no-bullmq]
 *
 * (a) raw better-sqlite3 (WAL, synchronous=NORMAL): enqueue → lease → ack, one transaction per step.
 * (b) Kiris: a `kiris serve` process, W `kiris worker --kinds noop` processes over TCP NDJSON RPC; a
 *     client enqueues N tasks with task.enqueueBatch and the workers lease and complete them.
 *     Then dispatch latency on an idle swarm: one task at a time, enqueue → the worker has it
 *     (`receivedAt - createdAt`, both stamped on this machine), p50/p99. Also the hub's peak RSS.
 * (c) BullMQ, when `redis-server` is installed: the same number of no-op jobs, W worker processes x C
 *     concurrency, against a private redis-server without persistence (see _bullmq.ts).
 * Every row prints its rate, its ratio to the others and its peak RSS.
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
import { flag } from "./_flags.js"

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

const endToEnd = Effect.gen(function* () {
  const hub = launch(["serve", "--port", "0", "--tcp-port", "0", "--data-dir", path.join(tmp, "hub")], {}, [
    ...(PROFILE_DIR === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", PROFILE_DIR]),
    ...(SNAPSHOT_DIR === undefined ? [] : ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${SNAPSHOT_DIR}`])
  ])
  const port = Number((yield* Effect.promise(() => hub.waitFor(/tcp=[\d.]+:(\d+)/)))[1])
  const adminKey = fs.readFileSync(path.join(tmp, "hub", "admin.key"), "utf8").trim()
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
        path.join(tmp, `w${i + 1}`)
      ],
      { KIRIS_TOKEN: workerKey }
    )
  )
  yield* Effect.promise(() => Promise.all(workers.map((w) => w.waitFor(/connected as/))))

  const stats = () => admin.task.stats({ projectId })
  const started = performance.now()
  const batches = Array.from({ length: Math.ceil(N / B) }, (_, b) =>
    Array.from({ length: Math.min(B, N - b * B) }, (_, i) => EnqueueTask.make({ projectId, kind: "noop", payload: { i: b * B + i } }))
  )
  let enqueuedAt = 0
  yield* Effect.forEach(batches, (tasks) => admin.task.enqueueBatch({ tasks }), { concurrency: 4, discard: true }).pipe(
    Effect.tap(() => Effect.sync(() => (enqueuedAt = performance.now()))),
    Effect.fork
  )
  for (;;) {
    const s = yield* stats()
    if (s.done >= N) break
    if (s.failed + s.dead > 0) return yield* Effect.dieMessage(`${s.failed + s.dead} tasks failed`)
    yield* Effect.sleep("20 millis")
  }
  const seconds = (performance.now() - started) / 1000
  const enqueueSeconds = (enqueuedAt - started) / 1000
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
  const e2e = await Effect.runPromise(endToEnd)
  console.log(
    `(b) kiris end to end over TCP RPC:            ${fmt(e2e.rate)} tasks/s (${fmt(e2e.seconds, 2)} s; enqueueing took ${fmt(e2e.enqueueSeconds, 2)} s)`
  )
  console.log(`    ratio kiris / raw: ${fmt(e2e.rate / raw, 2)}`)
  console.log(
    `    dispatch latency, idle swarm, ${SAMPLES} samples: p50 ${fmt(percentile(e2e.latencies, 50), 1)} ms, p99 ${fmt(percentile(e2e.latencies, 99), 1)} ms, max ${fmt(e2e.latencies.at(-1) ?? NaN, 1)} ms`
  )
  console.log(`    peak RSS (VmHWM): hub ${fmt(e2e.rssMb, 1)} MiB; largest worker ${fmt(e2e.workerRssMb, 1)} MiB`)
  if (!BULLMQ) console.log("(c) BullMQ: skipped (--no-bullmq)")
  else if (!redisInstalled()) console.log(`(c) BullMQ: skipped, redis-server not found; ${installHint}`)
  else {
    const bull = await runBullmq({ tasks: N, workers: W, concurrency: C, batch: B, tmp })
    console.log(`(c) BullMQ over a private redis-server:      ${fmt(bull.rate)} tasks/s (${fmt(bull.seconds, 2)} s)`)
    console.log(`    ratio kiris / bullmq: ${fmt(e2e.rate / bull.rate, 2)}; bullmq / raw: ${fmt(bull.rate / raw, 2)}`)
    console.log(`    peak RSS (VmHWM): redis-server ${fmt(bull.redisRssMb, 1)} MiB; largest worker ${fmt(bull.workerRssMb, 1)} MiB`)
  }
}

try {
  await main()
} finally {
  for (const c of children) c.kill("SIGTERM")
  await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once("exit", r)))))
  fs.rmSync(tmp, { recursive: true, force: true })
}
