import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import type { TaskId, WorkerId } from "../../src/domain/Ids.js"
import { backendConfig, backends } from "../support/Pg.js"
import { connection, eventually, pushesOf, startQueue, task, worker } from "./support.js"

/** Two hubs ("A" and "B"), each with its own store layer (and so its own Cluster hub id), on one fresh PostgreSQL database. */
const twoHubs = Effect.gen(function* () {
  const store = yield* backendConfig("pg")
  const a = yield* startQueue(store)
  const b = yield* startQueue(store)
  return { a, b }
})

type Hub = Effect.Effect.Success<typeof twoHubs>["a"]

/** A worker connected to `hub`, its Registered and first WorkAvailable already read. */
const connectWorker = (hub: Hub, name: string, clientId: number) =>
  Effect.gen(function* () {
    const next = yield* pushesOf(hub.hub.connect({ workerId: worker(name), name, kinds: ["noop"], capacity: 4 }, connection(clientId)))
    assert.strictEqual((yield* next)._tag, "Registered")
    assert.strictEqual((yield* next)._tag, "WorkAvailable")
    return next
  })

describe.skipIf(!backends.includes("pg"))("queue across hubs sharing one PostgreSQL database", () => {
  it.scopedLive("a task enqueued through hub A is pushed to a worker connected to hub B, which leases and completes it", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoHubs
      const next = yield* connectWorker(b, "wb", 1)
      const t = yield* a.queue.enqueue(task())
      assert.deepStrictEqual(yield* next, { _tag: "WorkAvailable", kinds: ["noop"] })
      const [lease] = yield* b.queue.lease(worker("wb"), ["noop"], 5)
      assert.strictEqual(lease?.task.id, t.id)
      const done = yield* b.queue.complete(worker("wb"), t.id, lease!.fencingToken, "ok")
      assert.strictEqual(done.status, "done")
      assert.strictEqual((yield* a.queue.get(t.id)).status, "done", "hub A reads what hub B wrote")
      assert.strictEqual((yield* a.queue.stats()).done, 1, "counts come from the database")
    })
  )

  it.scopedLive("a cancel through hub A reaches the worker on hub B; a lease from A is completed through B", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoHubs
      const next = yield* connectWorker(b, "wb", 1)
      const [kept, cancelled] = yield* a.queue.enqueueBatch([task({ payload: { n: 1 } }), task({ payload: { n: 2 } })])
      const leases = yield* a.queue.lease(worker("wb"), ["noop"], 2)
      assert.strictEqual(leases.length, 2)
      const tokenOf = (id: TaskId) => leases.find((l) => l.task.id === id)!.fencingToken
      yield* a.queue.cancel(cancelled!.id)
      let push = yield* next
      while (push._tag === "WorkAvailable") push = yield* next
      assert.deepStrictEqual(push, { _tag: "CancelTask", taskId: cancelled!.id })
      const beat = yield* b.queue.heartbeat(worker("wb"), cancelled!.id, tokenOf(cancelled!.id))
      assert.isTrue(beat.cancelled)
      const done = yield* b.queue.complete(worker("wb"), kept!.id, tokenOf(kept!.id), { n: 1 })
      assert.deepStrictEqual([done.status, done.result], ["done", { n: 1 }])
    })
  )

  it.scopedLive("a waiter on hub B resolves when the task ends through hub A", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoHubs
      const t = yield* a.queue.enqueue(task())
      const waiter = yield* Effect.fork(b.queue.wait([t.id]))
      const [lease] = yield* a.queue.lease(worker("wa"), ["noop"], 1)
      yield* a.queue.complete(worker("wa"), t.id, lease!.fencingToken, "finished")
      const [ended] = yield* Fiber.join(waiter)
      assert.deepStrictEqual([ended?.status, ended?.result], ["done", "finished"])
    })
  )

  it.scopedLive("2 hubs × 4 leasers over 500 tasks: no task is leased twice, each ends done exactly once", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoHubs
      const total = 500
      yield* a.queue.enqueueBatch(Array.from({ length: total / 2 }, (_, i) => task({ payload: { i } })))
      yield* b.queue.enqueueBatch(Array.from({ length: total / 2 }, (_, i) => task({ payload: { i: total / 2 + i } })))
      const leased: Array<TaskId> = []
      const completed: Array<TaskId> = []
      const leaser = (hub: Hub, id: WorkerId) =>
        Effect.gen(function* () {
          for (;;) {
            const leases = yield* hub.queue.lease(id, ["noop"], 7)
            assert.isAtMost(leases.length, 7)
            if (leases.length === 0) return
            for (const l of leases) leased.push(l.task.id)
            const outcomes = yield* hub.queue.completeBatch(
              id,
              leases.map((l) => ({ taskId: l.task.id, fencingToken: l.fencingToken, result: id }))
            )
            for (const o of outcomes) {
              assert.isTrue(o.ok, `completing ${o.taskId}`)
              completed.push(o.taskId)
            }
          }
        })
      yield* Effect.all(
        [a, b].flatMap((hub, h) => Array.from({ length: 4 }, (_, k) => leaser(hub, worker(`h${h}w${k}`)))),
        { concurrency: "unbounded", discard: true }
      )
      assert.strictEqual(leased.length, total, "every task was leased once")
      assert.strictEqual(new Set(leased).size, total)
      assert.strictEqual(new Set(completed).size, completed.length)
      assert.strictEqual(completed.length, total)
      for (const hub of [a, b]) {
        const stats = yield* hub.queue.stats()
        assert.deepStrictEqual([stats.done, stats.queued, stats.leased], [total, 0, 0])
      }
      const done = yield* a.queue.list({ status: "done", limit: 200 })
      assert.isTrue(done.every((t) => t.attempts === 1))
    })
  )

  it.scopedLive("a concurrency key's limit holds across hubs leasing at once", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoHubs
      yield* a.queue.enqueueBatch(Array.from({ length: 20 }, (_, i) => task({ payload: { i }, concurrencyKey: "k", concurrencyLimit: 2 })))
      const leaseEverywhere = Effect.all(
        [a, b].flatMap((hub, h) => Array.from({ length: 4 }, (_, k) => hub.queue.lease(worker(`h${h}w${k}`), ["noop"], 5))),
        { concurrency: "unbounded" }
      ).pipe(Effect.map((all) => all.flat()))
      let held = yield* leaseEverywhere
      assert.strictEqual(held.length, 2, "two leased across both hubs")
      for (let round = 0; round < 5; round++) {
        const [first] = held
        yield* (round % 2 === 0 ? a : b).queue.complete(first!.task.workerId!, first!.task.id, first!.fencingToken, null)
        const more = yield* leaseEverywhere
        assert.strictEqual(more.length, 1, `round ${round}: one slot came free`)
        held = [...held.slice(1), ...more]
        assert.strictEqual((yield* b.queue.stats()).leased, 2)
      }
    })
  )

  it.scopedLive("the reaper on both hubs requeues an expired lease once", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoHubs
      const t = yield* a.queue.enqueue(task({ maxAttempts: 5 }))
      yield* b.queue.lease(worker("w"), ["noop"], 1, 0.05)
      yield* eventually(a.queue.get(t.id), (x) => x.status === "queued", 10_000)
      const after = yield* b.queue.get(t.id)
      assert.strictEqual(after.history.filter((h) => h.outcome === "expired").length, 1, "one expiry logged, not one per hub")
    })
  )
})
