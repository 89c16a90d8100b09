import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Either, Exit, Fiber, Scope, Stream, TestClock } from "effect"
import type { TaskId } from "../../src/domain/Ids.js"
import { connection, eventually, otherProject, startQueue, task, worker } from "./support.js"
import { backendConfig, backends } from "../support/Pg.js"

const failure = <A, E>(exit: Either.Either<A, E>) => (Either.isLeft(exit) ? exit.left : undefined)

/**
 * On the test clock: checks `effect`, moving the clock on by `stepMs` between checks, until `done`
 * holds; dies after `steps` steps. (Work the clock wakes, such as the reaper, commits asynchronously.)
 */
const advanceUntil = <A, E, R>(effect: Effect.Effect<A, E, R>, done: (a: A) => boolean, stepMs = 25, steps = 200) =>
  Effect.gen(function* () {
    for (let i = 0; ; i++) {
      const value = yield* effect
      if (done(value)) return value
      if (i >= steps) return yield* Effect.dieMessage(`condition not met within ${steps * stepMs} ms of test-clock time`)
      yield* TestClock.adjust(stepMs)
    }
  })

describe.each(backends)("TaskQueue lifecycle on %s", (backend) => {
  it.scopedLive("leases by priority, then oldest first, across kinds", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      const low = yield* queue.enqueue(task({ priority: 0 }))
      const high = yield* queue.enqueue(task({ priority: 5, kind: "chat", payload: { prompt: "hi" } }))
      const low2 = yield* queue.enqueue(task({ priority: 0 }))
      const mid = yield* queue.enqueue(task({ priority: 2 }))
      const other = yield* queue.enqueue(task({ priority: 9, kind: "cli", payload: { prompt: "x", adapter: "codex" } }))
      const first = yield* queue.lease(worker("w"), ["noop", "chat"], 3)
      assert.deepStrictEqual(
        first.map((l) => l.task.id),
        [high.id, mid.id, low.id]
      )
      const rest = yield* queue.lease(worker("w"), ["noop", "chat"], 10)
      assert.deepStrictEqual(
        rest.map((l) => l.task.id),
        [low2.id]
      )
      assert.strictEqual((yield* queue.get(other.id)).status, "queued", "a kind the worker does not run is left alone")
    })
  )

  it.scoped("does not lease a task before its runAfter", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      const later = yield* queue.enqueue(task({ runAfter: (yield* Clock.currentTimeMillis) + 400 }))
      assert.strictEqual((yield* queue.lease(worker("w"), ["noop"], 10)).length, 0)
      yield* TestClock.adjust("399 millis")
      assert.strictEqual((yield* queue.lease(worker("w"), ["noop"], 10)).length, 0, "1 ms early")
      yield* TestClock.adjust("1 millis")
      const leases = yield* queue.lease(worker("w"), ["noop"], 10)
      assert.strictEqual(leases[0]!.task.id, later.id)
    })
  )

  it.scoped("retries a failure after an exponential backoff, then dead-letters it", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue({ ...(yield* backendConfig(backend)), taskRetryBaseMs: 200 })
      const t = yield* queue.enqueue(task({ maxAttempts: 3 }))
      const [l1] = yield* queue.lease(worker("w"), ["noop"], 1)
      const before = yield* Clock.currentTimeMillis
      const f1 = yield* queue.fail(worker("w"), t.id, l1!.fencingToken, "boom 1", true)
      assert.strictEqual(f1.status, "queued")
      assert.strictEqual(f1.error, "boom 1")
      assert.isAtLeast(f1.runAfter - before, 200 * 0.8)
      assert.isAtMost(f1.runAfter - before, 200 * 1.2)
      yield* TestClock.adjust(f1.runAfter - before - 1)
      assert.strictEqual((yield* queue.lease(worker("w"), ["noop"], 1)).length, 0, "backing off")
      yield* TestClock.adjust(1)

      const [l2] = yield* queue.lease(worker("w"), ["noop"], 1)
      assert.strictEqual(l2!.task.attempts, 2)
      const f2 = yield* queue.fail(worker("w"), t.id, l2!.fencingToken, "boom 2", true)
      assert.isAtLeast(f2.runAfter - f2.updatedAt, 400 * 0.8, "the second delay doubles")
      assert.isAtMost(f2.runAfter - f2.updatedAt, 400 * 1.2)
      yield* TestClock.adjust(f2.runAfter - f2.updatedAt)

      const [l3] = yield* queue.lease(worker("w"), ["noop"], 1)
      const dead = yield* queue.fail(worker("w"), t.id, l3!.fencingToken, "boom 3", true)
      assert.strictEqual(dead.status, "dead")
      assert.strictEqual(dead.attempts, 3)
      assert.isNotNull(dead.finishedAt)

      const revived = yield* queue.retry(t.id)
      assert.strictEqual(revived.status, "queued")
      assert.strictEqual(revived.attempts, 0)
      assert.strictEqual(failure(yield* Effect.either(queue.retry(t.id)))?._tag, "InvalidInput")
    })
  )

  it.scopedLive("a non-retryable failure ends the task as failed at once", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      const t = yield* queue.enqueue(task({ maxAttempts: 5 }))
      const [l] = yield* queue.lease(worker("w"), ["noop"], 1)
      const failed = yield* queue.fail(worker("w"), t.id, l!.fencingToken, "bad input", false)
      assert.strictEqual(failed.status, "failed")
      assert.strictEqual(failed.attempts, 1)
    })
  )

  it.scopedLive("an idempotency key returns the existing task of that project", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      const a = yield* queue.enqueue(task({ idempotencyKey: "k1", payload: { v: 1 } }))
      const b = yield* queue.enqueue(task({ idempotencyKey: "k1", payload: { v: 2 } }))
      assert.strictEqual(b.id, a.id)
      assert.deepStrictEqual(b.payload, { v: 1 })
      const batch = yield* queue.enqueueBatch([task({ idempotencyKey: "k2" }), task({ idempotencyKey: "k2" }), task({ idempotencyKey: "k1" })])
      assert.strictEqual(batch[0]!.id, batch[1]!.id)
      assert.strictEqual(batch[2]!.id, a.id)
      const elsewhere = yield* queue.enqueue(task({ idempotencyKey: "k1", projectId: otherProject }))
      assert.notStrictEqual(elsewhere.id, a.id)
      assert.strictEqual((yield* queue.stats()).queued, 3)
    })
  )

  it.scopedLive("a concurrency key keeps at most its limit leased at once", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      const keyed = yield* queue.enqueueBatch([1, 2, 3].map((i) => task({ concurrencyKey: "repo", payload: { i } })))
      const free = yield* queue.enqueue(task())
      const first = yield* queue.lease(worker("w"), ["noop"], 10)
      assert.deepStrictEqual(
        first.map((l) => l.task.id),
        [keyed[0]!.id, free.id]
      )
      assert.strictEqual((yield* queue.lease(worker("w2"), ["noop"], 10)).length, 0)
      yield* queue.complete(worker("w"), keyed[0]!.id, first[0]!.fencingToken, null)
      const next = yield* queue.lease(worker("w2"), ["noop"], 10)
      assert.deepStrictEqual(
        next.map((l) => l.task.id),
        [keyed[1]!.id]
      )

      const wide = yield* queue.enqueueBatch([1, 2, 3].map(() => task({ concurrencyKey: "pool", concurrencyLimit: 2 })))
      const two = yield* queue.lease(worker("w3"), ["noop"], 10)
      assert.deepStrictEqual(
        two.map((l) => l.task.id),
        [wide[0]!.id, wide[1]!.id]
      )
      const handedBack = yield* queue.get(wide[2]!.id)
      assert.deepStrictEqual(
        [handedBack.status, handedBack.attempts, handedBack.workerId],
        ["queued", 0, null],
        "a lease handed back leaves no trace"
      )
    })
  )

  it.scopedLive("a stale fencing token is refused and changes nothing", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      const t = yield* queue.enqueue(task())
      const [l] = yield* queue.lease(worker("w"), ["noop"], 1)
      const stale = yield* Effect.either(queue.complete(worker("w"), t.id, l!.fencingToken + 1, "nope"))
      assert.strictEqual(failure(stale)?._tag, "LeaseLost")
      const staleFail = yield* Effect.either(queue.fail(worker("w"), t.id, l!.fencingToken - 1, "nope", false))
      assert.strictEqual(failure(staleFail)?._tag, "LeaseLost")
      const unchanged = yield* queue.get(t.id)
      assert.strictEqual(unchanged.status, "leased")
      assert.isNull(unchanged.result)
      const unknown = yield* Effect.either(queue.complete(worker("w"), "tsk_nope" as TaskId, 1, null))
      assert.strictEqual(failure(unknown)?._tag, "LeaseLost", "an unknown task is refused like a stale token")
      const outcomes = yield* queue.completeBatch(worker("w"), [
        { taskId: t.id, fencingToken: 99, result: 1 },
        { taskId: t.id, fencingToken: l!.fencingToken, result: 2 }
      ])
      assert.deepStrictEqual(
        outcomes.map((o) => o.ok),
        [false, true]
      )
      assert.strictEqual((yield* queue.get(t.id)).result, 2)
    })
  )

  it.scoped("an expired lease goes back to the queue and to another worker with a new token", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      const t = yield* queue.enqueue(task())
      const [first] = yield* queue.lease(worker("a"), ["noop"], 1, 0.2)
      yield* TestClock.adjust("199 millis")
      assert.strictEqual((yield* queue.get(t.id)).status, "leased", "not expired yet")
      const [second] = yield* advanceUntil(queue.lease(worker("b"), ["noop"], 1), (ls) => ls.length > 0)
      assert.strictEqual(second!.task.id, t.id)
      assert.strictEqual(second!.task.workerId, worker("b"))
      assert.notStrictEqual(second!.fencingToken, first!.fencingToken)
      assert.strictEqual(second!.task.attempts, 2)
      const late = yield* Effect.either(queue.complete(worker("a"), t.id, first!.fencingToken, "late"))
      assert.strictEqual(failure(late)?._tag, "LeaseLost")
      const beat = yield* Effect.either(queue.heartbeat(worker("a"), t.id, first!.fencingToken))
      assert.strictEqual(failure(beat)?._tag, "LeaseLost")
      yield* queue.complete(worker("b"), t.id, second!.fencingToken, "on time")
      assert.strictEqual((yield* queue.get(t.id)).result, "on time")
    })
  )

  it.scoped("an expired lease of a task out of attempts dead-letters it", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      const t = yield* queue.enqueue(task({ maxAttempts: 1 }))
      yield* queue.lease(worker("a"), ["noop"], 1, 0.1)
      const dead = yield* advanceUntil(queue.get(t.id), (x) => x.status === "dead")
      assert.match(dead.error ?? "", /lease expired/)
    })
  )

  it.scoped("a heartbeat extends the lease and records progress", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      const t = yield* queue.enqueue(task())
      const [l] = yield* queue.lease(worker("a"), ["noop"], 1, 1.5)
      for (let i = 0; i < 4; i++) {
        // 2 s of beats in all: past the 1.5 s the first lease had
        yield* TestClock.adjust("500 millis")
        const beat = yield* queue.heartbeat(worker("a"), t.id, l!.fencingToken, { step: i })
        assert.isFalse(beat.cancelled)
        assert.strictEqual(beat.expiresAt, (yield* Clock.currentTimeMillis) + 1500)
      }
      const current = yield* queue.get(t.id)
      assert.strictEqual(current.status, "leased", "kept alive past its first expiry")
      assert.deepStrictEqual(current.progress, { step: 3 })
    })
  )

  it.scopedLive("cancels queued tasks, and leased ones with a push to their worker", () =>
    Effect.gen(function* () {
      const { hub, queue } = yield* startQueue(yield* backendConfig(backend))
      const queued = yield* queue.enqueue(task({ kind: "chat", payload: { prompt: "x" } }))
      const cancelled = yield* queue.cancel(queued.id)
      assert.strictEqual(cancelled.status, "cancelled")
      assert.strictEqual((yield* queue.lease(worker("w"), ["chat"], 1)).length, 0)

      const pushes = yield* hub.connect({ workerId: worker("w1"), name: "w1", kinds: ["noop"], capacity: 1 }, connection(1)).pipe(
        Stream.filter((p) => p._tag === "CancelTask"),
        Stream.take(1),
        Stream.runCollect,
        Effect.fork
      )
      yield* eventually(hub.list(new Map()), (ws) => ws.some((w) => w.id === worker("w1") && w.connected))
      const leased = yield* queue.enqueue(task())
      const [l] = yield* queue.lease(worker("w1"), ["noop"], 1)
      yield* queue.cancel(leased.id)
      const [push] = yield* Fiber.join(pushes)
      assert.deepStrictEqual(push, { _tag: "CancelTask", taskId: leased.id })
      assert.deepStrictEqual(yield* queue.heartbeat(worker("w1"), leased.id, l!.fencingToken).pipe(Effect.map((b) => b.cancelled)), true)
      assert.strictEqual(failure(yield* Effect.either(queue.complete(worker("w1"), leased.id, l!.fencingToken, null)))?._tag, "LeaseLost")
      assert.strictEqual((yield* queue.cancel(leased.id)).status, "cancelled", "cancelling again is harmless")
    })
  )

  it.scopedLive("wait resolves when every task has ended, or at its timeout", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      const [a, b] = yield* queue.enqueueBatch([task(), task()])
      const waiting = yield* Effect.fork(queue.wait([a!.id, b!.id]))
      const early = yield* queue.wait([a!.id], 50)
      assert.strictEqual(early[0]!.status, "queued")
      const leases = yield* queue.lease(worker("w"), ["noop"], 2)
      yield* queue.complete(worker("w"), a!.id, leases[0]!.fencingToken, 1)
      assert.isNull(yield* Fiber.poll(waiting).pipe(Effect.map((o) => (o._tag === "Some" ? "done" : null))))
      yield* queue.fail(worker("w"), b!.id, leases[1]!.fencingToken, "x", false)
      const ended = yield* Fiber.join(waiting)
      assert.deepStrictEqual(
        ended.map((t) => t.status),
        ["done", "failed"]
      )
      assert.strictEqual(failure(yield* Effect.either(queue.wait(["tsk_missing" as TaskId])))?._tag, "NotFound")
    })
  )

  it.scopedLive("a human task is completed by approval", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      const t = yield* queue.enqueue(task({ kind: "human", payload: { question: "ship it?" } }))
      const approved = yield* queue.approve(t.id, "yes")
      assert.strictEqual(approved.status, "done")
      assert.strictEqual(approved.result, "yes")
      const chat = yield* queue.enqueue(task({ kind: "chat", payload: { prompt: "x" } }))
      assert.strictEqual(failure(yield* Effect.either(queue.approve(chat.id, "yes")))?._tag, "InvalidInput")
    })
  )

  it.scopedLive("rejects malformed tasks with InvalidInput", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      const bad = [
        task({ kind: "chat", payload: { nope: 1 } }),
        task({ maxAttempts: 0 }),
        task({ priority: Number.NaN }),
        task({ dependsOn: ["tsk_x" as TaskId], dependencyPolicy: "quorum:2" })
      ]
      for (const t of bad) assert.strictEqual(failure(yield* Effect.either(queue.enqueue(t)))?._tag, "InvalidInput")
      assert.strictEqual(failure(yield* Effect.either(queue.enqueue(task({ dependsOn: ["tsk_x" as TaskId] }))))?._tag, "NotFound")
      assert.strictEqual(failure(yield* Effect.either(queue.lease(worker("w"), ["noop"], 1, -1)))?._tag, "InvalidInput")
      assert.strictEqual((yield* queue.stats()).queued, 0)
    })
  )

  it.scopedLive("concurrent batch leases never hand out the same task twice", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      yield* queue.enqueueBatch(Array.from({ length: 500 }, (_, i) => task({ payload: { i }, priority: i % 3 })))
      const leaser = (w: string) =>
        Effect.gen(function* () {
          const got: Array<string> = []
          for (;;) {
            const leases = yield* queue.lease(worker(w), ["noop"], 7)
            if (leases.length === 0) return got
            got.push(...leases.map((l) => l.task.id))
          }
        })
      const all = (yield* Effect.all(["a", "b", "c", "d", "e"].map(leaser), { concurrency: "unbounded" })).flat()
      assert.strictEqual(all.length, 500)
      assert.strictEqual(new Set(all).size, 500)
    })
  )

  it.scoped("stats stay exact through every kind of transition (checked against a recount on restart)", () =>
    Effect.gen(function* () {
      const store = yield* backendConfig(backend)
      const first = yield* Scope.make()
      const { dataDir, queue } = yield* startQueue(store).pipe(Scope.extend(first))
      const [a, b, c, d, e] = yield* queue.enqueueBatch([task(), task(), task(), task({ maxAttempts: 1 }), task({ kind: "human" })])
      const dependent = yield* queue.enqueue(
        task({ kind: "chat", payload: { prompt: "x" }, dependsOn: [a!.id, b!.id], dependencyPolicy: "fail-fast" })
      )
      yield* queue.enqueue(task({ projectId: otherProject, idempotencyKey: "x" }))
      const leases = yield* queue.lease(worker("w"), ["noop"], 3)
      const byId = new Map(leases.map((l) => [l.task.id, l]))
      yield* queue.fail(worker("w"), a!.id, byId.get(a!.id)!.fencingToken, "x", false)
      yield* queue.fail(worker("w"), c!.id, byId.get(c!.id)!.fencingToken, "retry me", true)
      yield* queue.lease(worker("w"), ["noop"], 1, 0.1)
      yield* advanceUntil(queue.get(d!.id), (t) => t.status === "dead")
      yield* queue.approve(e!.id, "ok")
      yield* queue.retry(d!.id)
      const before = yield* queue.stats()
      assert.deepStrictEqual(
        { ...before },
        { waiting: 0, queued: 3, input_required: 0, leased: 0, done: 1, failed: 2, dead: 0, cancelled: 1, workers: 0 }
      )
      assert.strictEqual((yield* queue.get(dependent.id)).status, "failed")
      assert.strictEqual((yield* queue.stats([otherProject])).queued, 1)
      yield* Scope.close(first, Exit.void)
      const again = yield* startQueue({ ...(yield* backendConfig(backend)), ...store, dataDir })
      assert.deepStrictEqual({ ...(yield* again.queue.stats()) }, { ...before })
    })
  )

  it.scopedLive("tasks survive a restart", () =>
    Effect.gen(function* () {
      const store = yield* backendConfig(backend)
      const first = yield* Scope.make()
      const { dataDir, queue } = yield* startQueue(store).pipe(Scope.extend(first))
      const kept = yield* queue.enqueue(task({ payload: { keep: true } }))
      const [l] = yield* queue.lease(worker("w"), ["noop"], 1)
      const leased = l!.task
      const queued = yield* queue.enqueue(task())
      yield* Scope.close(first, Exit.void)

      const again = yield* startQueue({ ...(yield* backendConfig(backend)), ...store, dataDir })
      assert.deepStrictEqual((yield* again.queue.get(kept.id)).payload, { keep: true })
      assert.strictEqual((yield* again.queue.get(leased.id)).status, "leased")
      const [next] = yield* again.queue.lease(worker("w"), ["noop"], 5)
      assert.strictEqual(next!.task.id, queued.id)
      yield* again.queue.complete(worker("w"), leased.id, l!.fencingToken, "finished after restart")
      const later = yield* again.queue.enqueue(task())
      assert.isAbove(later.seq, queued.seq)
    })
  )
})
