import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Scope, Stream } from "effect"
import { connection, eventually, pushesOf, startQueue, task, worker } from "./support.js"

describe("WorkerHub", () => {
  it.scopedLive("coalesces work-available pushes and merges their kinds", () =>
    Effect.gen(function* () {
      const { hub, queue } = yield* startQueue()
      const next = yield* pushesOf(hub.connect({ workerId: worker("w1"), name: "one", kinds: ["noop", "chat", "agent"], capacity: 2 }, connection(1)))
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
    })
  )

  it.scopedLive("a reconnect with the same id and key reclaims the registration on its connection; a drop keeps the leases", () =>
    Effect.gen(function* () {
      const { hub, queue } = yield* startQueue()
      const t = yield* queue.enqueue(task())
      const firstScope = yield* Scope.make()
      const first = yield* hub
        .connect({ workerId: worker("w1"), name: "one", kinds: ["noop"], capacity: 1 }, connection(1))
        .pipe(Stream.runCollect, Effect.forkIn(firstScope))
      yield* eventually(hub.list(new Map()), (ws) => ws.some((w) => w.connected))
      const [lease] = yield* queue.lease(worker("w1"), ["noop"], 1)
      assert.deepStrictEqual(yield* hub.registered(connection(1)), [worker("w1")])
      assert.deepStrictEqual(yield* hub.registered(connection(1, "key_other")), [], "only for the key that registered it")

      const stolen = yield* Effect.flip(
        Stream.runDrain(hub.connect({ workerId: worker("w1"), name: "thief", kinds: ["noop"], capacity: 1 }, connection(3, "key_other")))
      )
      assert.strictEqual(stolen._tag, "Forbidden")
      assert.deepStrictEqual(yield* hub.registered(connection(1)), [worker("w1")], "a refused claim changes nothing")

      const secondScope = yield* Scope.make()
      const second = yield* pushesOf(hub.connect({ workerId: worker("w1"), name: "one again", kinds: ["noop"], capacity: 3 }, connection(2))).pipe(
        Scope.extend(secondScope)
      )
      assert.deepStrictEqual(yield* second, { _tag: "Registered", workerId: worker("w1"), leaseSeconds: 300 })
      const ended = yield* Fiber.join(first)
      assert.strictEqual(Chunk.size(ended), 2, "the replaced connection's stream ends")
      yield* Scope.close(firstScope, Exit.void)
      assert.deepStrictEqual(yield* hub.registered(connection(1)), [], "the old connection lost the registration")
      assert.deepStrictEqual(yield* hub.registered(connection(2)), [worker("w1")])
      const listed = yield* hub.list(yield* queue.inFlight)
      assert.deepStrictEqual(
        listed.map((w) => [w.id, w.name, w.capacity, w.connected, w.inFlight]),
        [[worker("w1"), "one again", 3, true, 1]]
      )

      yield* Scope.close(secondScope, Exit.void)
      assert.deepStrictEqual(yield* hub.registered(connection(2)), [], "a closed connection releases its registrations")
      const dropped = yield* hub.list(yield* queue.inFlight)
      assert.deepStrictEqual(
        dropped.map((w) => [w.connected, w.inFlight]),
        [[false, 1]]
      )
      assert.strictEqual((yield* queue.get(t.id)).status, "leased", "leases outlive the connection")
      yield* queue.complete(worker("w1"), t.id, lease!.fencingToken, "done anyway")
    })
  )

  it.scopedLive("a hub that forgot its registry (a restart) still lets only the key a worker id was issued to claim it", () =>
    Effect.gen(function* () {
      const { hub } = yield* startQueue()
      const stranger = yield* Effect.flip(
        Stream.runDrain(hub.connect({ workerId: worker("w1"), name: "thief", kinds: ["noop"], capacity: 1 }, connection(1, "key_other")))
      )
      assert.strictEqual(stranger._tag, "Forbidden")
      const owner = yield* pushesOf(hub.connect({ workerId: worker("w1"), name: "one", kinds: ["noop"], capacity: 1 }, connection(2)))
      assert.deepStrictEqual(yield* owner, { _tag: "Registered", workerId: worker("w1"), leaseSeconds: 300 })
      const fresh = yield* pushesOf(hub.connect({ name: "new", kinds: ["noop"], capacity: 1 }, connection(3, "key_other")))
      const registered = yield* fresh
      assert.strictEqual(registered._tag, "Registered")
      assert.notStrictEqual(registered._tag === "Registered" && registered.workerId, worker("w1"))
    })
  )
})
