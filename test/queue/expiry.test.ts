import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Task } from "../../src/domain/Task.js"
import { taskDetails } from "../../src/cli/TaskCommands.js"
import { SUSPECT_AFTER_WORKERS } from "../../src/queue/sql/TaskRows.js"
import { eventually, startQueue, task, worker } from "./support.js"
import { backendConfig, backends } from "../support/Pg.js"

const BASE = 150

/** Leases the task on `name` for 0.1 s and never renews it (its worker "dies"); resolves once the reaper re-queued it. */
const leaseAndDie = (queue: Effect.Effect.Success<ReturnType<typeof startQueue>>["queue"], task: Task, name: string, expiries: number) =>
  Effect.gen(function* () {
    const [lease] = yield* eventually(queue.lease(worker(name), ["noop"], 1, 0.1), (ls) => ls.length > 0)
    assert.strictEqual(lease!.task.id, task.id)
    const leasedAt = Date.now()
    return {
      leasedAt,
      after: yield* eventually(
        queue.get(task.id),
        (t) => t.history.filter((a) => a.outcome === "expired").length === expiries && t.status !== "leased"
      )
    }
  })

describe.each(backends)("lease expiry on %s", (backend) => {
  it.scopedLive("a task whose workers die is handed out again after a growing backoff, and becomes suspect", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue({ ...(yield* backendConfig(backend)), taskRetryBaseMs: BASE, taskRetryMaxMs: 60_000, reaperIntervalMs: 20 })
      const t = yield* queue.enqueue(task({ maxAttempts: SUSPECT_AFTER_WORKERS + 2 }))
      const gaps: Array<number> = []
      let redeliveredAt = 0
      for (let i = 0; i < SUSPECT_AFTER_WORKERS; i++) {
        const { after, leasedAt } = yield* leaseAndDie(queue, t, `crashy-${i}`, i + 1)
        if (i > 0) assert.isAtLeast(leasedAt - redeliveredAt, gaps[i - 1]! - 5, "not handed out again before its backoff")
        assert.strictEqual(after.status, "queued")
        assert.strictEqual(after.attempts, i + 1)
        assert.isNull(after.workerId)
        assert.match(after.error ?? "", /lease expired: worker .*crashy-/)
        const gap = after.runAfter - after.updatedAt
        const expected = BASE * 2 ** i
        assert.isAtLeast(gap, expected * 0.8 - 1, `backoff after expiry ${i + 1}`)
        assert.isAtMost(gap, expected * 1.2 + 1, `backoff after expiry ${i + 1}`)
        gaps.push(gap)
        redeliveredAt = after.updatedAt
        if (Date.now() < after.runAfter - 40) {
          assert.strictEqual((yield* queue.lease(worker("healthy"), ["noop"], 1)).length, 0, "backing off")
        }
        assert.strictEqual(after.suspect, i + 1 >= SUSPECT_AFTER_WORKERS, `suspect after ${i + 1} expiries on different workers`)
      }
      for (let i = 1; i < gaps.length; i++) assert.isAbove(gaps[i]!, gaps[i - 1]!, "the gap between redeliveries grows")
      const final = yield* queue.get(t.id)
      assert.deepStrictEqual(
        final.history.map((a): ReadonlyArray<unknown> => [a.attempt, a.workerId, a.outcome]),
        Array.from({ length: SUSPECT_AFTER_WORKERS }, (_, i): ReadonlyArray<unknown> => [i + 1, worker(`crashy-${i}`), "expired"])
      )

      assert.match(taskDetails(final), /status: +queued \(suspect/, "`kiris task ID` shows it")

      // the suspect mark stays while the task runs on and completes
      const [l] = yield* eventually(queue.lease(worker("healthy"), ["noop"], 1), (ls) => ls.length > 0)
      const done = yield* queue.complete(worker("healthy"), t.id, l!.fencingToken, "ok")
      assert.isTrue(done.suspect)
      assert.isNull(done.error)
    })
  )

  it.scopedLive("expiries on one worker do not make a task suspect, and the last allowed one dead-letters it", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue({ ...(yield* backendConfig(backend)), taskRetryBaseMs: 20, reaperIntervalMs: 20 })
      const t = yield* queue.enqueue(task({ maxAttempts: SUSPECT_AFTER_WORKERS }))
      for (let i = 0; i < SUSPECT_AFTER_WORKERS; i++) {
        const { after } = yield* leaseAndDie(queue, t, "same", i + 1)
        assert.isFalse(after.suspect)
        assert.strictEqual(after.status, i + 1 === SUSPECT_AFTER_WORKERS ? "dead" : "queued")
      }
      const final = yield* queue.get(t.id)
      assert.deepStrictEqual(
        final.history.map((a) => a.workerId),
        Array.from({ length: SUSPECT_AFTER_WORKERS }, () => worker("same"))
      )
    })
  )
})
