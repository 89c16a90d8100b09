/**
 * Hub-side throughput of the swarm queue over TCP RPC: starts `kiris serve` as a child process, then
 * from this process enqueues in batches and runs W lease → completeBatch loops (each on its own
 * connection, as `kiris worker` does), and reports tasks/s and enqueue→lease latency. Usage:
 *   npx tsx scripts/bench/queue-rpc.ts [tasks=50000] [workers=4] [batch=200] [-- extra node flags for the hub]
 */
import { Clock, Deferred, Effect, Queue, Stream } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type HubRpcClient, makeHubClient } from "../../src/client/HubClient.js"
import type { WorkerId } from "../../src/domain/Ids.js"
import { EnqueueTask } from "../../src/domain/Task.js"

const dash = process.argv.indexOf("--")
const args = (dash === -1 ? process.argv.slice(2) : process.argv.slice(2, dash)).map(Number)
const nodeFlags = dash === -1 ? [] : process.argv.slice(dash + 1)
const [total = 50_000, workers = 4, batch = 200] = args
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kiris-bench-rpc-"))

const startHub = Effect.acquireRelease(
  Effect.async<{ readonly port: number; readonly stop: () => void }>((resume) => {
    const child = spawn(process.execPath, [...nodeFlags, "bin/kiris.js", "serve", "--data-dir", dataDir, "--port", "0", "--tcp-port", "0"], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString()
      const m = out.match(/tcp=[\d.]+:(\d+)/)
      if (m) resume(Effect.succeed({ port: Number(m[1]), stop: () => child.kill("SIGTERM") }))
    })
  }),
  (hub) => Effect.sync(hub.stop)
)

const program = Effect.gen(function* () {
  const hub = yield* startHub
  const key = fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim()
  const target = { transport: "tcp" as const, host: "127.0.0.1", port: hub.port }
  const admin = yield* makeHubClient(target, key)
  const project = yield* admin.project.create({ name: "bench", description: "" })
  const workerKey = (yield* admin.key.create({ name: "bench workers", scopes: ["worker"] })).key
  /** A worker connection: registers with `worker.connect` (leases are bound to it), then `onPush` handles pushes. */
  const register = (
    name: string,
    kinds: ReadonlyArray<"noop" | "chat">,
    onPush: (client: HubRpcClient, id: WorkerId) => Effect.Effect<void, unknown> = () => Effect.void
  ) =>
    Effect.gen(function* () {
      const client = yield* makeHubClient(target, workerKey)
      const registered = yield* Deferred.make<WorkerId>()
      yield* client.worker.connect({ name, kinds, capacity: batch }).pipe(
        Stream.runForEach((push) =>
          push._tag === "Registered"
            ? Deferred.succeed(registered, push.workerId)
            : push._tag === "WorkAvailable"
              ? Effect.flatMap(Deferred.await(registered), (id) => onPush(client, id))
              : Effect.void
        ),
        Effect.orDie,
        Effect.forkScoped
      )
      return { client, workerId: yield* Deferred.await(registered) }
    })
  let completed = 0
  const latencies: Array<number> = []
  const worker = (w: number) =>
    Effect.gen(function* () {
      const { client, workerId } = yield* register(`bench-${w}`, ["noop"])
      while (completed < total) {
        const leases = yield* client.task.lease({ workerId, kinds: ["noop"], max: batch })
        if (leases.length === 0) {
          yield* Effect.sleep("2 millis")
          continue
        }
        const now = yield* Clock.currentTimeMillis
        for (const l of leases) latencies.push(now - l.task.createdAt)
        yield* client.task.completeBatch({ items: leases.map((l) => ({ taskId: l.task.id, fencingToken: l.fencingToken, result: null })) })
        completed += leases.length
      }
    })
  const producer = Effect.gen(function* () {
    for (let sent = 0; sent < total; sent += batch * 5) {
      const n = Math.min(batch * 5, total - sent)
      yield* admin.task.enqueueBatch({
        tasks: Array.from({ length: n }, (_, i) => EnqueueTask.make({ projectId: project.id, kind: "noop", payload: { i: sent + i } }))
      })
    }
  })
  // Date.now: the benchmark measures wall-clock time
  const started = Date.now()
  yield* Effect.all([producer, ...Array.from({ length: workers }, (_, w) => worker(w))], { concurrency: "unbounded" })
  const seconds = (Date.now() - started) / 1000
  latencies.sort((a, b) => a - b)
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]
  console.log(`${total} tasks in ${seconds.toFixed(2)} s: ${Math.round(total / seconds)} tasks/s (workers=${workers}, batch=${batch})`)
  console.log(`enqueue→lease ms: p50=${pct(0.5)} p99=${pct(0.99)} (backlogged run; not the idle dispatch latency)`)
  const stats = yield* admin.task.stats({ projectId: project.id })
  console.log(`done=${stats.done} queued=${stats.queued} leased=${stats.leased}`)

  // Idle dispatch: one task at a time; a worker leases when pushed WorkAvailable.
  const held = yield* Queue.unbounded<number>()
  yield* register("latency", ["chat"], (client, workerId) =>
    Effect.gen(function* () {
      const leases = yield* client.task.lease({ workerId, kinds: ["chat"], max: 10 })
      for (const l of leases) {
        yield* Queue.offer(held, yield* Clock.currentTimeMillis)
        yield* client.task.complete({ taskId: l.task.id, fencingToken: l.fencingToken, result: null })
      }
    })
  )
  const dispatch: Array<number> = []
  for (let i = 0; i < 300; i++) {
    const start = performance.now()
    yield* admin.task.enqueue({ projectId: project.id, kind: "chat", payload: { prompt: `p${i}` } })
    yield* Queue.take(held)
    dispatch.push(performance.now() - start)
  }
  dispatch.sort((a, b) => a - b)
  const q = (p: number) => dispatch[Math.min(dispatch.length - 1, Math.floor(dispatch.length * p))]!.toFixed(2)
  console.log(`idle dispatch, enqueue call → worker holds the lease (ms): p50=${q(0.5)} p99=${q(0.99)} max=${q(1)}`)
})

Effect.runPromise(Effect.scoped(program)).finally(() => fs.rmSync(dataDir, { recursive: true, force: true }))
