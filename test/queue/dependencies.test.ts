import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { TaskId } from "../../src/domain/Ids.js"
import { MapRequest } from "../../src/domain/rpc/TaskRpcs.js"
import { MapReduce } from "../../src/queue/MapReduce.js"
import { TaskQueue } from "../../src/queue/TaskQueue.js"
import { project, startQueue, task, worker } from "./support.js"
import { type Backend, backendConfig, backends } from "../support/Pg.js"

const withMapReduce = (backend: Backend) =>
  Effect.gen(function* () {
    const started = yield* startQueue(yield* backendConfig(backend))
    const mapReduce = yield* MapReduce.pipe(Effect.provide(MapReduce.Default.pipe(Layer.provide(Layer.succeed(TaskQueue, started.queue)))))
    return { ...started, mapReduce }
  })

const map = (items: number, policy: MapRequest["policy"]) =>
  MapRequest.make({ projectId: project, kind: "noop", items: Array.from({ length: items }, (_, i) => ({ i })), reduce: { sum: true }, policy })

describe.each(backends)("dependencies and map-reduce on %s", (backend) => {
  it.scopedLive("a dependent waits for its dependencies, then gets their results as inputs", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      const [a, b] = yield* queue.enqueueBatch([task(), task()])
      const join = yield* queue.enqueue(task({ kind: "chat", payload: { prompt: "join" }, dependsOn: [a!.id, b!.id] }))
      assert.strictEqual(join.status, "waiting")
      const leases = yield* queue.lease(worker("w"), ["noop", "chat"], 10)
      assert.strictEqual(leases.length, 2)
      yield* queue.complete(worker("w"), a!.id, leases.find((l) => l.task.id === a!.id)!.fencingToken, "A")
      assert.strictEqual((yield* queue.get(join.id)).status, "waiting")
      yield* queue.complete(worker("w"), b!.id, leases.find((l) => l.task.id === b!.id)!.fencingToken, { b: 2 })
      const [l] = yield* queue.lease(worker("w"), ["chat"], 1)
      assert.strictEqual(l!.task.id, join.id)
      assert.deepStrictEqual(l!.inputs, { [a!.id]: "A", [b!.id]: { b: 2 } })

      const after = yield* queue.enqueue(task({ dependsOn: [a!.id] }))
      assert.strictEqual(after.status, "queued", "dependencies that already ended release at once")
    })
  )

  it.scopedLive("by default a failed dependency fails the dependent", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      const a = yield* queue.enqueue(task())
      const b = yield* queue.enqueue(task({ dependsOn: [a.id] }))
      const c = yield* queue.enqueue(task({ dependsOn: [b.id] }))
      const [l] = yield* queue.lease(worker("w"), ["noop"], 1)
      yield* queue.fail(worker("w"), a.id, l!.fencingToken, "nope", false)
      assert.strictEqual((yield* queue.get(b.id)).status, "failed")
      assert.strictEqual((yield* queue.get(c.id)).status, "failed", "the failure cascades")
    })
  )

  it.scopedLive("fail-fast: a failed map task cancels the others and fails the reducer", () =>
    Effect.gen(function* () {
      const { mapReduce, queue } = yield* withMapReduce(backend)
      const { mapTasks, reduceTask } = yield* mapReduce.map(map(4, "fail-fast"))
      assert.strictEqual(mapTasks.length, 4)
      assert.strictEqual(reduceTask!.status, "waiting")
      assert.deepStrictEqual(
        reduceTask!.dependsOn,
        mapTasks.map((t) => t.id)
      )
      const leases = yield* queue.lease(worker("w"), ["noop"], 2)
      yield* queue.complete(worker("w"), leases[0]!.task.id, leases[0]!.fencingToken, 1)
      yield* queue.fail(worker("w"), leases[1]!.task.id, leases[1]!.fencingToken, "broken", false)
      const states = yield* queue.getMany(mapTasks.map((t) => t.id))
      assert.deepStrictEqual(
        states.map((t) => t.status),
        ["done", "failed", "cancelled", "cancelled"]
      )
      const reducer = yield* queue.get(reduceTask!.id)
      assert.strictEqual(reducer.status, "failed")
      assert.match(reducer.error ?? "", /fail-fast/)
      assert.strictEqual((yield* queue.lease(worker("w"), ["noop"], 10)).length, 0)
    })
  )

  it.scopedLive("fail-fast waits out retries: only a dead map task fails the job", () =>
    Effect.gen(function* () {
      const { mapReduce, queue } = yield* withMapReduce(backend)
      const { mapTasks, reduceTask } = yield* mapReduce.map(
        MapRequest.make({ projectId: project, kind: "noop", items: [1, 2], reduce: null, policy: "fail-fast", maxAttempts: 2 })
      )
      const [l1, l2] = yield* queue.lease(worker("w"), ["noop"], 2)
      yield* queue.fail(worker("w"), l1!.task.id, l1!.fencingToken, "flaky", true)
      assert.strictEqual((yield* queue.get(reduceTask!.id)).status, "waiting")
      yield* queue.complete(worker("w"), l2!.task.id, l2!.fencingToken, 2)
      const retried = yield* Effect.repeat(queue.lease(worker("w"), ["noop"], 1), { until: (ls) => ls.length > 0 })
      yield* queue.complete(worker("w"), retried[0]!.task.id, retried[0]!.fencingToken, 1)
      const [reducer] = yield* queue.lease(worker("w"), ["noop"], 1)
      assert.strictEqual(reducer!.task.id, reduceTask!.id)
      assert.deepStrictEqual(reducer!.inputs, { [mapTasks[0]!.id]: 1, [mapTasks[1]!.id]: 2 })
    })
  )

  it.scopedLive("partial: the reducer runs with what succeeded and sees every child's outcome", () =>
    Effect.gen(function* () {
      const { mapReduce, queue } = yield* withMapReduce(backend)
      const { mapTasks, reduceTask } = yield* mapReduce.map(map(3, "partial"))
      const leases = yield* queue.lease(worker("w"), ["noop"], 3)
      yield* queue.complete(worker("w"), leases[0]!.task.id, leases[0]!.fencingToken, "ok0")
      yield* queue.fail(worker("w"), leases[1]!.task.id, leases[1]!.fencingToken, "bad1", false)
      assert.strictEqual((yield* queue.get(reduceTask!.id)).status, "waiting", "waits for every child to end")
      yield* queue.cancel(leases[2]!.task.id)
      const [reducer] = yield* queue.lease(worker("w"), ["noop"], 1)
      assert.strictEqual(reducer!.task.id, reduceTask!.id)
      assert.deepStrictEqual(reducer!.task.payload, { sum: true })
      assert.deepStrictEqual(reducer!.inputs, {
        [mapTasks[0]!.id]: { index: 0, item: mapTasks[0]!.payload, status: "done", result: "ok0", error: null },
        [mapTasks[1]!.id]: { index: 1, item: mapTasks[1]!.payload, status: "failed", result: null, error: "bad1" },
        [mapTasks[2]!.id]: { index: 2, item: mapTasks[2]!.payload, status: "cancelled", result: null, error: "cancelled" }
      })
    })
  )

  it.scopedLive("quorum:K runs the reducer when K succeeded", () =>
    Effect.gen(function* () {
      const { mapReduce, queue } = yield* withMapReduce(backend)
      const { reduceTask } = yield* mapReduce.map(map(3, "quorum:2"))
      const leases = yield* queue.lease(worker("w"), ["noop"], 3)
      yield* queue.complete(worker("w"), leases[0]!.task.id, leases[0]!.fencingToken, 0)
      yield* queue.fail(worker("w"), leases[1]!.task.id, leases[1]!.fencingToken, "x", false)
      yield* queue.complete(worker("w"), leases[2]!.task.id, leases[2]!.fencingToken, 2)
      assert.strictEqual((yield* queue.get(reduceTask!.id)).status, "queued")
    })
  )

  it.scopedLive("quorum:K fails the reducer as soon as K can no longer be reached", () =>
    Effect.gen(function* () {
      const { mapReduce, queue } = yield* withMapReduce(backend)
      const { mapTasks, reduceTask } = yield* mapReduce.map(map(3, "quorum:2"))
      const leases = yield* queue.lease(worker("w"), ["noop"], 2)
      yield* queue.fail(worker("w"), leases[0]!.task.id, leases[0]!.fencingToken, "x", false)
      assert.strictEqual((yield* queue.get(reduceTask!.id)).status, "waiting")
      yield* queue.fail(worker("w"), leases[1]!.task.id, leases[1]!.fencingToken, "y", false)
      const reducer = yield* queue.get(reduceTask!.id)
      assert.strictEqual(reducer.status, "failed")
      assert.match(reducer.error ?? "", /quorum not reached: 0 of 3/)
      assert.strictEqual((yield* queue.get(mapTasks[2]!.id)).status, "queued", "quorum does not cancel the rest")
    })
  )

  it.scopedLive("map refuses an impossible quorum and an empty item list", () =>
    Effect.gen(function* () {
      const { mapReduce } = yield* withMapReduce(backend)
      const tooMany = yield* Effect.flip(mapReduce.map(map(2, "quorum:3")))
      assert.strictEqual(tooMany._tag, "InvalidInput")
      const empty = yield* Effect.flip(mapReduce.map(map(0, "partial")))
      assert.strictEqual(empty._tag, "InvalidInput")
    })
  )

  it.scopedLive("a dependency must exist in the same project", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      const a = yield* queue.enqueue(task({ projectId: "prj_elsewhere" as typeof project }))
      const refused = yield* Effect.flip(queue.enqueue(task({ dependsOn: [a.id] })))
      assert.strictEqual(refused._tag, "InvalidInput")
      const missing = yield* Effect.flip(queue.enqueue(task({ dependsOn: ["tsk_missing" as TaskId] })))
      assert.strictEqual(missing._tag, "NotFound")
    })
  )
})
