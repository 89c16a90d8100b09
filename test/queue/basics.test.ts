import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { backendConfig, backends } from "../support/Pg.js"
import { startQueue, task, worker } from "./support.js"

describe.each(backends)("TaskQueue basics on %s", (backend) => {
  it.scopedLive("enqueues, leases, completes", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      const t = yield* queue.enqueue(task({ payload: { n: 1 } }))
      assert.strictEqual(t.status, "queued")
      assert.match(t.id, /^tsk_/)
      const leases = yield* queue.lease(worker("w1"), ["noop"], 10)
      assert.strictEqual(leases.length, 1)
      const lease = leases[0]!
      assert.strictEqual(lease.task.id, t.id)
      assert.isAbove(lease.fencingToken, 1, "tokens are random, not counters")
      assert.strictEqual(lease.task.attempts, 1)
      const done = yield* queue.complete(worker("w1"), t.id, lease.fencingToken, { ok: true })
      assert.strictEqual(done.status, "done")
      assert.deepStrictEqual(done.result, { ok: true })
      const got = yield* queue.get(t.id)
      assert.strictEqual(got.status, "done")
      const bySeq = yield* queue.getBySeq(t.seq)
      assert.strictEqual(bySeq.id, t.id)
    })
  )

  it.scopedLive("a lease hands out at most `max` tasks, each once", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue(yield* backendConfig(backend))
      yield* queue.enqueueBatch(Array.from({ length: 10 }, (_, i) => task({ payload: { i } })))
      const first = yield* queue.lease(worker("w1"), ["noop", "chat"], 3)
      assert.strictEqual(first.length, 3)
      assert.strictEqual((yield* queue.stats()).leased, 3, "the database holds exactly the leases handed out")
      const second = yield* queue.lease(worker("w2"), ["noop"], 4)
      assert.strictEqual(second.length, 4)
      assert.strictEqual((yield* queue.stats()).leased, 7)
      assert.strictEqual(new Set([...first, ...second].map((l) => l.task.id)).size, 7)
    })
  )
})
