import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { startQueue, task, worker } from "./support.js"

describe("TaskQueue basics", () => {
  it.scopedLive("enqueues, leases, completes", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue()
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
})
