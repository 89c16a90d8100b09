/**
 * Nothing grows forever: one hub in this process (run with `--expose-gc`; the benchmark restarts
 * itself with it when needed) with the fake OpenAI-compatible model of the tests, driven through
 * rounds of the same workload:
 *   - `--sessions` sessions (default 2,000), each created and prompted once (`--concurrency` at a
 *     time, default 16), until every one is idle again;
 *   - `--cycles` worker connections (default 200), each registering and leaving: `--worker-ids`
 *     workers (default 20) taking turns, each reconnecting with the id it was issued;
 *   - `--tasks` noop tasks (default 20,000) enqueued in batches and run by one raw worker connection.
 * Runs the workload three times: a warm-up round (caches fill to their bounds), then rounds 1 and 2.
 * Reports heap used and RSS after each round and a GC, start (after the warm-up) against end (after
 * round 2), and each round against the one before. Then what the per-session, per-worker and per-key
 * bookkeeping still holds. The figures are for this whole process (hub, clients and fake model). Usage:
 *   npm run bench -- soak [--sessions 2000] [--concurrency 16] [--cycles 200] [--worker-ids 20] [--tasks 20000]
 */
import { SocketServer } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { ConfigProvider, Context, Effect, Layer, Schedule, Stream } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { ApiKeys } from "../../src/auth/ApiKeys.js"
import { HubLayer } from "../../src/AppLayer.js"
import { type HubRpcClient, makeHubClient } from "../../src/client/HubClient.js"
import { ServerConfig } from "../../src/config/ServerConfig.js"
import type { ProjectId, WorkerId } from "../../src/domain/Ids.js"
import { EnqueueTask } from "../../src/domain/Task.js"
import { Orchestrator } from "../../src/orchestrator/Orchestrator.js"
import { WorkerHub } from "../../src/queue/WorkerHub.js"
import { fakeOpenAI } from "../../test/support/FakeOpenAI.js"
import { flag } from "./_flags.js"
import { mb, runBench } from "./_main.js"

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) {
  // the same script again, with --expose-gc and the same arguments
  const child = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: "inherit"
  })
  process.exit(child.status ?? 1)
}

const SESSIONS = flag("sessions", 2_000)
const CONCURRENCY = flag("concurrency", 16)
const CYCLES = flag("cycles", 200)
const WORKER_IDS = Math.max(1, flag("worker-ids", 20))
const TASKS = flag("tasks", 20_000)
const BATCH = 1000

/** The hub of this process: its services, and a TCP client for a token (scoped). */
interface Hub {
  readonly context: Context.Context<Layer.Layer.Success<typeof HubLayer>>
  readonly adminKey: string
  readonly tcpClient: (token: string) => ReturnType<typeof makeHubClient>
}

interface Sizes {
  readonly sessions: number
  readonly cycles: number
  readonly tasks: number
}

interface Memory {
  readonly heap: number
  readonly rss: number
}

/** Heap used and RSS after a full collection (twice: finalizers may free more). */
const measure = Effect.sync((): Memory => {
  gc!()
  gc!()
  const m = process.memoryUsage()
  return { heap: m.heapUsed, rss: m.rss }
})

const pct = (from: number, to: number) => `${to >= from ? "+" : ""}${(((to - from) / from) * 100).toFixed(1)}%`
const show = (m: Memory) => `heap used ${mb(m.heap)}, RSS ${mb(m.rss)}`
const compare = (from: Memory, to: Memory) => `heap ${pct(from.heap, to.heap)}, RSS ${pct(from.rss, to.rss)}`

/** Polls `done` every 20 ms until it holds, failing after `seconds`. */
const waitFor = (what: string, done: Effect.Effect<boolean>, seconds = 600) =>
  done.pipe(
    Effect.filterOrFail(
      (ok) => ok,
      () => what
    ),
    Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo(`${seconds} seconds`))),
    Effect.mapError(() => new Error(`soak: ${what} did not happen within ${seconds}s`))
  )

const prompted = (hub: Hub, admin: HubRpcClient, projectId: ProjectId, n: number) =>
  Effect.gen(function* () {
    const orchestrator = Context.get(hub.context, Orchestrator)
    yield* Effect.forEach(
      Array.from({ length: n }),
      () => Effect.flatMap(admin.session.create({ projectId }), (s) => admin.session.prompt({ projectId, sessionId: s.id, text: "hello" })),
      { concurrency: CONCURRENCY, discard: true }
    )
    yield* waitFor(
      "every session idle",
      Effect.map(orchestrator.tracked, (t) => t.active + t.fibers + t.locks === 0)
    )
  })

/** The ids of the `--worker-ids` workers that come and go, once the hub issued them. */
const workerIds: Array<WorkerId | undefined> = []

/**
 * Workers that register and leave, one connection each: `WORKER_IDS` workers taking turns, each
 * reconnecting with the id it was issued, as a worker process restarting does.
 */
const workerCycles = (hub: Hub, workerKey: string, n: number) =>
  Effect.forEach(
    Array.from({ length: n }, (_, i) => i % WORKER_IDS),
    (slot) =>
      Effect.scoped(
        Effect.gen(function* () {
          const client = yield* hub.tcpClient(workerKey)
          const known = workerIds[slot]
          const pushes = yield* client.worker
            .connect({ name: `soak-${slot}`, kinds: ["noop"], capacity: 1, ...(known === undefined ? {} : { workerId: known }) })
            .pipe(Stream.take(1), Stream.runCollect)
          for (const push of pushes) if (push._tag === "Registered") workerIds[slot] = push.workerId
        })
      ),
    { concurrency: 8, discard: true }
  )

/** Enqueues `n` noop tasks and runs them on one worker connection (lease, then complete in batches). */
const noopTasks = (hub: Hub, admin: HubRpcClient, workerKey: string, projectId: ProjectId, n: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      for (let done = 0; done < n; done += BATCH) {
        const tasks = Array.from({ length: Math.min(BATCH, n - done) }, (_, i) =>
          EnqueueTask.make({ projectId, kind: "noop", payload: { i: done + i } })
        )
        yield* admin.task.enqueueBatch({ tasks })
      }
      const client = yield* hub.tcpClient(workerKey)
      const pushes = yield* Stream.toPull(client.worker.connect({ name: "soak-runner", kinds: ["noop"], capacity: BATCH }))
      const first = yield* Effect.orDie(pushes)
      const registered = [...first].find((p) => p._tag === "Registered")
      if (registered === undefined || registered._tag !== "Registered") return yield* Effect.dieMessage("soak: the worker was not registered")
      const workerId: WorkerId = registered.workerId
      yield* Effect.iterate(0, {
        while: (completed) => completed < n,
        body: (completed) =>
          Effect.gen(function* () {
            const leases = yield* client.task.lease({ workerId, kinds: ["noop"], max: BATCH })
            if (leases.length === 0) return completed
            const items = leases.map((l) => ({ taskId: l.task.id, fencingToken: l.fencingToken, result: {} }))
            yield* client.task.completeBatch({ workerId, items })
            return completed + leases.length
          })
      })
    })
  )

const round = (hub: Hub, admin: HubRpcClient, workerKey: string, projectId: ProjectId, sizes: Sizes) =>
  Effect.gen(function* () {
    const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.gen(function* () {
        const started = performance.now()
        yield* effect
        return (performance.now() - started) / 1000
      })
    return {
      sessions: yield* timed(prompted(hub, admin, projectId, sizes.sessions)),
      cycles: yield* timed(workerCycles(hub, workerKey, sizes.cycles)),
      tasks: yield* timed(noopTasks(hub, admin, workerKey, projectId, sizes.tasks))
    }
  })

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kiris-bench-soak-"))

const program = Effect.gen(function* () {
  const fake = yield* fakeOpenAI
  const config = ServerConfig.layerWith({ dataDir, port: 0, tcpPort: 0, workspaceRoots: [os.tmpdir()] })
  const context = yield* Layer.build(HubLayer.pipe(Layer.provide(config), Layer.provide(NodeContext.layer))).pipe(
    Effect.withConfigProvider(
      ConfigProvider.fromMap(
        new Map([
          ["KIRIS_MODEL", "openai-compatible:fake"],
          ["KIRIS_OPENAI_COMPATIBLE_BASE_URL", fake.baseURL],
          ["KIRIS_LLM_MAX_RETRIES", "0"]
        ])
      )
    )
  )
  const tcp = Context.get(context, SocketServer.SocketServer).address as SocketServer.TcpAddress
  const hub: Hub = {
    context,
    adminKey: fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim(),
    tcpClient: (token) => makeHubClient({ transport: "tcp", host: "127.0.0.1", port: tcp.port }, token)
  }
  const admin = yield* hub.tcpClient(hub.adminKey)
  const project = yield* admin.project.create({ name: "soak", description: "" })
  const workerKey = (yield* admin.key.create({ name: "soak workers", scopes: ["worker"] })).key
  const full: Sizes = { sessions: SESSIONS, cycles: CYCLES, tasks: TASKS }
  console.log(`soak: per round ${full.sessions} sessions prompted once, ${full.cycles} worker connect/disconnect cycles, ${full.tasks} noop tasks`)

  const run = (name: string, sizes: Sizes) =>
    Effect.gen(function* () {
      const took = yield* round(hub, admin, workerKey, project.id, sizes)
      fake.reset()
      const memory = yield* measure
      const seconds = `sessions ${took.sessions.toFixed(1)} s, workers ${took.cycles.toFixed(1)} s, tasks ${took.tasks.toFixed(1)} s`
      console.log(`${name.padEnd(8)} ${seconds}   ${show(memory)}`)
      return memory
    })

  // the warm-up is a whole round: caches (SQLite pages, prepared statements, JIT code) fill to their bounds
  const start = yield* run("warm-up", full)
  const first = yield* run("round 1", full)
  const second = yield* run("round 2", full)

  console.log(`start (after the warm-up round and GC): ${show(start)}`)
  console.log(`end (after round 2 and GC):             ${show(second)}   vs start: ${compare(start, second)}`)
  console.log(`round by round: round 1 vs warm-up ${compare(start, first)}; round 2 vs round 1 ${compare(first, second)}`)
  const tracked = yield* Context.get(hub.context, Orchestrator).tracked
  const workers = yield* Context.get(hub.context, WorkerHub).size
  const touched = yield* Context.get(hub.context, ApiKeys).touchedSize
  console.log(
    `still held: session locks ${tracked.locks}, active turns ${tracked.active}, steered ${tracked.steered}, turn fibers ${tracked.fibers}; ` +
      `workers known ${workers} (connected or recently gone); API keys remembered as used ${touched}`
  )
})

runBench(program, dataDir)
