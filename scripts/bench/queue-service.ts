/**
 * Throughput of the TaskQueue service alone (no transport): producers enqueue in batches while
 * workers lease and complete in batches, as `kiris worker` does. Usage:
 *   npx tsx scripts/bench/queue-service.ts [tasks=100000] [workers=8] [batch=100] [--database-url URL] [--hubs 1]
 * With `--database-url` the queue runs on that (empty, throwaway) PostgreSQL database, and with
 * `--hubs N` as N hubs sharing it (each with its own store layer), the workers spread over them.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ServerConfig } from "../../src/config/ServerConfig.js"
import type { ProjectId, WorkerId } from "../../src/domain/Ids.js"
import { EnqueueTask } from "../../src/domain/Task.js"
import { EventBus } from "../../src/events/EventBus.js"
import { DatabaseLive } from "../../src/storage/Database.js"
import { QueueLive } from "../../src/queue/QueueLive.js"
import { TaskQueue } from "../../src/queue/TaskQueue.js"
import { flag, textFlag } from "./_flags.js"

const positional = process.argv.slice(2).filter((a, i, all) => !a.startsWith("--") && !all[i - 1]?.startsWith("--"))
const [total = 100_000, workers = 8, batch = 100] = positional.map(Number)
const databaseUrl = textFlag("database-url")
const hubs = Math.max(1, databaseUrl === undefined ? 1 : flag("hubs", 1))
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kiris-bench-queue-"))
const projectId = "prj_bench" as ProjectId

const program = Effect.gen(function* () {
  const store = databaseUrl === undefined ? {} : { databaseUrl: Option.some(Redacted.make(databaseUrl)) }
  const queues = yield* Effect.forEach(Array.from({ length: hubs }), () =>
    Effect.map(
      Layer.build(
        QueueLive.pipe(
          Layer.provideMerge(EventBus.Default),
          Layer.provideMerge(DatabaseLive),
          Layer.provideMerge(ServerConfig.layerWith({ dataDir, ...store })),
          Layer.provideMerge(Reactivity.layer)
        )
      ),
      (context) => Context.get(context, TaskQueue)
    )
  )
  const queue = queues[0]!
  // Date.now: the benchmark measures wall-clock time
  const started = Date.now()
  const cpu = process.cpuUsage()
  let enqueued = 0
  let completed = 0
  const producer = Effect.gen(function* () {
    while (enqueued < total) {
      const n = Math.min(batch * 10, total - enqueued)
      enqueued += n
      yield* queue.enqueueBatch(Array.from({ length: n }, (_, i) => EnqueueTask.make({ projectId, kind: "noop", payload: { i } })))
    }
  })
  const worker = (w: number) =>
    Effect.gen(function* () {
      const queue = queues[w % queues.length]!
      while (completed < total) {
        const leases = yield* queue.lease(`w${w}` as WorkerId, ["noop", "chat"], batch)
        if (leases.length === 0) {
          yield* Effect.sleep("1 millis")
          continue
        }
        yield* queue.completeBatch(
          `w${w}` as WorkerId,
          leases.map((l) => ({ taskId: l.task.id, fencingToken: l.fencingToken, result: { ok: true } }))
        )
        completed += leases.length
      }
    })
  yield* Effect.all([producer, ...Array.from({ length: workers }, (_, w) => worker(w))], { concurrency: "unbounded" })
  const seconds = (Date.now() - started) / 1000
  const used = process.cpuUsage(cpu)
  const stats = yield* queue.stats()
  console.log(
    `${total} tasks through${hubs > 1 ? ` ${hubs} hubs` : ""} enqueue → lease → complete in ${seconds.toFixed(2)} s: ${Math.round(total / seconds)} tasks/s`
  )
  console.log(
    `CPU ${((used.user + used.system) / total).toFixed(1)} µs per task (${Math.round(1e6 / ((used.user + used.system) / total))} tasks per CPU-second)`
  )
  console.log(`done=${stats.done} queued=${stats.queued} leased=${stats.leased}`)
})

Effect.runPromise(Effect.scoped(program)).finally(() => fs.rmSync(dataDir, { recursive: true, force: true }))
