import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Scope, Stream } from "effect"
import type { WorkerPush } from "../../src/domain/rpc/WorkerRpcs.js"
import { eventually, startQueue, task, worker } from "./support.js"

/** Pulls pushes one chunk at a time, for the caller's scope. */
const pushesOf = (stream: Stream.Stream<WorkerPush>) =>
  Effect.gen(function* () {
    const pull = yield* Stream.toPull(stream)
    const buffered: Array<WorkerPush> = []
    return Effect.gen(function* () {
      while (buffered.length === 0) buffered.push(...Chunk.toReadonlyArray(yield* Effect.orDie(pull)))
      return buffered.shift()!
    })
  })

describe("WorkerHub", () => {
  it.scopedLive("coalesces work-available pushes and merges their kinds", () =>
    Effect.gen(function* () {
      const { hub, queue } = yield* startQueue()
      const next = yield* pushesOf(hub.connect({ workerId: worker("w1"), name: "one", kinds: ["noop", "chat", "agent"], capacity: 2 }))
      assert.deepStrictEqual(yield* next, { _tag: "Registered", workerId: worker("w1"), leaseSeconds: 300 })
      assert.deepStrictEqual(yield* next, { _tag: "WorkAvailable", kinds: ["noop", "chat", "agent"] })

      const t = yield* queue.enqueue(task())
      yield* queue.enqueue(task({ kind: "chat", payload: { prompt: "x" } }))
      yield* queue.enqueue(task())
      yield* queue.enqueue(task({ kind: "cli", payload: { prompt: "x", adapter: "codex" } }))
      const push = yield* next
      assert.strictEqual(push._tag, "WorkAvailable")
      assert.sameMembers(push._tag === "WorkAvailable" ? [...push.kinds] : [], ["noop", "chat"])

      const [lease] = yield* queue.lease(worker("w1"), ["noop"], 1)
      assert.strictEqual(lease!.task.id, t.id)
      yield* queue.cancel(t.id)
      assert.deepStrictEqual(yield* next, { _tag: "CancelTask", taskId: t.id }, "no further WorkAvailable was queued")
    }))

  it.scopedLive("a reconnect with the same id reclaims the registration; a drop keeps the leases", () =>
    Effect.gen(function* () {
      const { hub, queue } = yield* startQueue()
      const t = yield* queue.enqueue(task())
      const firstScope = yield* Scope.make()
      const first = yield* hub.connect({ workerId: worker("w1"), name: "one", kinds: ["noop"], capacity: 1 }).pipe(
        Stream.runCollect,
        Effect.forkIn(firstScope)
      )
      yield* eventually(hub.list(new Map()), (ws) => ws.some((w) => w.connected))
      const [lease] = yield* queue.lease(worker("w1"), ["noop"], 1)

      const secondScope = yield* Scope.make()
      const second = yield* pushesOf(hub.connect({ workerId: worker("w1"), name: "one again", kinds: ["noop"], capacity: 3 })).pipe(
        Scope.extend(secondScope)
      )
      assert.deepStrictEqual(yield* second, { _tag: "Registered", workerId: worker("w1"), leaseSeconds: 300 })
      const ended = yield* Fiber.join(first)
      assert.strictEqual(Chunk.size(ended), 2, "the replaced connection's stream ends")
      yield* Scope.close(firstScope, Exit.void)
      const listed = yield* hub.list(yield* queue.inFlight)
      assert.deepStrictEqual(
        listed.map((w) => [w.id, w.name, w.capacity, w.connected, w.inFlight]),
        [[worker("w1"), "one again", 3, true, 1]]
      )

      yield* Scope.close(secondScope, Exit.void)
      const dropped = yield* hub.list(yield* queue.inFlight)
      assert.deepStrictEqual(
        dropped.map((w) => [w.connected, w.inFlight]),
        [[false, 1]]
      )
      assert.strictEqual((yield* queue.get(t.id)).status, "leased", "leases outlive the connection")
      yield* queue.complete(t.id, lease!.fencingToken, "done anyway")
    }))
})
