import { assert, describe, it } from "@effect/vitest"
import { Context, Data, Effect, Option, Redacted, Schedule } from "effect"
import type { WorkerId } from "../../../src/domain/Ids.js"
import { TaskQueue } from "../../../src/queue/TaskQueue.js"
import { kirosuConnect, statsKeys, taskKeys } from "../../support/KirosuClient.js"
import { startHub } from "../../support/Hub.js"

/** A test step that did not happen in time. */
class TestFailure extends Data.TaggedError("TestFailure")<{ readonly message: string }> {}

/** The Kirosu hub protocol spoken over a raw TCP socket against a real hub. */

const kirosuHub = (overrides: Parameters<typeof startHub>[0] = {}) =>
  Effect.gen(function* () {
    const hub = yield* startHub({ kirosuPort: Option.some(0), ...overrides })
    assert.isDefined(hub.kirosuPort)
    return { hub, port: hub.kirosuPort! }
  })

const nowSeconds = () => Date.now() / 1000

describe("kirosu port", () => {
  it.scopedLive("enqueue, list and stats: the envelope and the exact key sets, in order", () =>
    Effect.gen(function* () {
      const { port } = yield* kirosuHub()
      const c = yield* kirosuConnect(port)
      const before = nowSeconds()
      yield* c.send(JSON.stringify({ id: 7, method: "enqueue", params: { prompt: "hello" } }) + "\n")
      const raw = yield* c.line
      const reply = JSON.parse(raw)
      assert.deepStrictEqual(Object.keys(reply), ["id", "result", "error"])
      assert.strictEqual(reply.id, 7)
      assert.strictEqual(reply.error, null)
      assert.deepStrictEqual(Object.keys(reply.result), ["task_id"])
      assert.isTrue(Number.isInteger(reply.result.task_id) && reply.result.task_id >= 1)

      const system = yield* c.ok("enqueue", { prompt: "with system", system_prompt: "be brief", type: "chat" })
      const list = yield* c.ok("list")
      assert.deepStrictEqual(Object.keys(list), ["tasks", "stats"])
      assert.strictEqual(list.tasks.length, 2)
      for (const t of list.tasks) assert.deepStrictEqual(Object.keys(t), taskKeys)
      const [newest, oldest] = list.tasks
      assert.strictEqual(newest.task_id, system.task_id)
      assert.strictEqual(newest.system_prompt, "be brief")
      assert.deepStrictEqual(
        { ...oldest, created_at: 0, updated_at: 0 },
        {
          task_id: reply.result.task_id,
          prompt: "hello",
          system_prompt: null,
          type: "chat",
          status: "queued",
          created_at: 0,
          updated_at: 0,
          leased_until: null,
          worker_id: null,
          result: null,
          error: null
        }
      )
      assert.isTrue(oldest.created_at >= before - 1 && oldest.created_at <= nowSeconds() + 1, "created_at is epoch seconds")
      assert.deepStrictEqual(Object.keys(list.stats), statsKeys)
      assert.deepStrictEqual(list.stats, {
        queued: 2,
        leased: 0,
        done: 0,
        failed: 0,
        total_tasks: 2,
        completed_last_hour: 0,
        avg_completion_time_sec: 0,
        error_rate_percent: 0
      })
      const stats = yield* c.ok("stats")
      assert.deepStrictEqual(Object.keys(stats), ["stats"])
      assert.deepStrictEqual(stats.stats, list.stats)
    })
  )

  it.scopedLive("echoes any JSON id as sent, and null when there is none", () =>
    Effect.gen(function* () {
      const { port } = yield* kirosuHub()
      const c = yield* kirosuConnect(port)
      for (const id of ["abc", 0, 12.5, { nested: [1, "x"] }, [1, 2], true, null]) {
        yield* c.send(JSON.stringify({ id, method: "stats" }) + "\n")
        const r = yield* c.reply
        assert.deepStrictEqual(r.id, id)
        assert.isNotNull(r.result)
      }
      yield* c.send('{"method":"stats","params":null}\n')
      assert.strictEqual((yield* c.reply).id, null)
    })
  )

  it.scopedLive("lease: defaults, oldest first, explicit worker and lease seconds, empty when nothing is queued", () =>
    Effect.gen(function* () {
      const { port } = yield* kirosuHub({ leaseSeconds: 120 })
      const c = yield* kirosuConnect(port)
      const ids: Array<number> = []
      for (const prompt of ["a", "b", "c", "d"]) ids.push((yield* c.ok("enqueue", { prompt })).task_id)

      const first = yield* c.ok("lease")
      assert.deepStrictEqual(Object.keys(first), ["tasks"])
      assert.strictEqual(first.tasks.length, 1)
      const t = first.tasks[0]
      assert.deepStrictEqual(Object.keys(t), taskKeys)
      assert.strictEqual(t.task_id, ids[0])
      assert.strictEqual(t.status, "leased")
      assert.strictEqual(t.worker_id, "worker")
      assert.approximately(t.leased_until - nowSeconds(), 120, 5)

      const two = yield* c.ok("lease", { worker_id: "kiro-1", max_tasks: 2, lease_seconds: 10 })
      assert.deepStrictEqual(
        two.tasks.map((x: { task_id: number }) => x.task_id),
        ids.slice(1, 3)
      )
      for (const x of two.tasks) {
        assert.strictEqual(x.worker_id, "kiro-1")
        assert.approximately(x.leased_until - nowSeconds(), 10, 5)
      }
      const rest = yield* c.ok("lease", { max_tasks: 10 })
      assert.deepStrictEqual(
        rest.tasks.map((x: { task_id: number }) => x.task_id),
        ids.slice(3)
      )
      assert.deepStrictEqual(yield* c.ok("lease", { max_tasks: 5 }), { tasks: [] })
      const stats = (yield* c.ok("stats")).stats
      assert.strictEqual(stats.leased, 4)
      assert.strictEqual(stats.queued, 0)
    })
  )

  it.scopedLive("ack: done and failed (case-insensitive); refused for other statuses and for tasks not leased", () =>
    Effect.gen(function* () {
      const { port } = yield* kirosuHub()
      const c = yield* kirosuConnect(port)
      const a = (yield* c.ok("enqueue", { prompt: "a" })).task_id
      const b = (yield* c.ok("enqueue", { prompt: "b" })).task_id
      const queued = (yield* c.ok("enqueue", { prompt: "q" })).task_id
      yield* c.ok("lease", { max_tasks: 2, worker_id: "w" })

      const bad = yield* c.call("ack", { task_id: a, status: "maybe" })
      assert.strictEqual(bad.result, null)
      assert.include(bad.error?.message, "status")

      assert.deepStrictEqual(yield* c.ok("ack", { task_id: a, status: "DONE", result: "A!" }), { ok: true })
      assert.deepStrictEqual(yield* c.ok("ack", { task_id: String(b), status: "Failed", error: "boom" }), { ok: true })
      const again = yield* c.call("ack", { task_id: a, status: "done", result: "twice" })
      assert.include(again.error?.message, "not leased")
      const notLeased = yield* c.call("ack", { task_id: queued, status: "done" })
      assert.include(notLeased.error?.message, "not leased")
      const unknown = yield* c.call("ack", { task_id: 99999, status: "done" })
      assert.include(unknown.error?.message, "99999")
      const missing = yield* c.call("ack", { status: "done" })
      assert.include(missing.error?.message, "task_id")

      const { tasks, stats } = yield* c.ok("list", { limit: 0 })
      const shown = (id: number) => {
        const t = tasks.find((x: { task_id: number }) => x.task_id === id)
        return [t.status, t.result, t.error, t.leased_until, t.worker_id]
      }
      assert.deepStrictEqual(shown(a), ["done", "A!", null, null, "w"])
      assert.deepStrictEqual(shown(b), ["failed", null, "boom", null, "w"])
      assert.deepStrictEqual(shown(queued), ["queued", null, null, null, null])
      assert.strictEqual(stats.done, 1)
      assert.strictEqual(stats.failed, 1)
      assert.strictEqual(stats.completed_last_hour, 1)
      assert.strictEqual(stats.error_rate_percent, 50)
      assert.isAtLeast(stats.avg_completion_time_sec, 0)
      assert.strictEqual(Math.round(stats.avg_completion_time_sec * 100) / 100, stats.avg_completion_time_sec)
    })
  )

  it.scopedLive("list: newest first, limit 50 by default, <= 0 means all, status filter", () =>
    Effect.gen(function* () {
      const { port } = yield* kirosuHub()
      const c = yield* kirosuConnect(port)
      const requests = Array.from({ length: 55 }, (_, i) => c.request("enqueue", { prompt: `p${i}` }))
      yield* c.send(requests.map((r) => r.text).join(""))
      const ids: Array<number> = []
      for (const r of requests) {
        const reply = yield* c.reply
        assert.strictEqual(reply.id, r.id)
        ids.push(reply.result!.task_id)
      }
      const seqDesc = [...ids].sort((x, y) => y - x)
      const byDefault = yield* c.ok("list")
      assert.strictEqual(byDefault.tasks.length, 50)
      assert.deepStrictEqual(
        byDefault.tasks.map((t: { task_id: number }) => t.task_id),
        seqDesc.slice(0, 50)
      )
      assert.strictEqual((yield* c.ok("list", { limit: 0 })).tasks.length, 55)
      assert.strictEqual((yield* c.ok("list", { limit: -1 })).tasks.length, 55)
      assert.strictEqual((yield* c.ok("list", { limit: 3 })).tasks.length, 3)

      yield* c.ok("lease", { max_tasks: 2 })
      const leased = yield* c.ok("list", { status: "leased" })
      assert.deepStrictEqual(
        leased.tasks.map((t: { task_id: number }) => t.task_id),
        [ids[1], ids[0]]
      )
      assert.strictEqual((yield* c.ok("list", { status: "QUEUED", limit: 0 })).tasks.length, 53)
      assert.strictEqual((yield* c.ok("list", { status: "done" })).tasks.length, 0)
      assert.strictEqual((yield* c.ok("list", { status: "nonsense" })).tasks.length, 0)
    })
  )

  it.scopedLive("retry_failed puts every failed task back in the queue with worker, result and error cleared", () =>
    Effect.gen(function* () {
      const { port } = yield* kirosuHub()
      const c = yield* kirosuConnect(port)
      const ids: Array<number> = []
      for (const prompt of ["x", "y", "z"]) ids.push((yield* c.ok("enqueue", { prompt })).task_id)
      yield* c.ok("lease", { max_tasks: 3, worker_id: "w" })
      yield* c.ok("ack", { task_id: ids[0], status: "failed", error: "e1" })
      yield* c.ok("ack", { task_id: ids[1], status: "failed", error: "e2" })
      yield* c.ok("ack", { task_id: ids[2], status: "done", result: "ok" })
      assert.deepStrictEqual(yield* c.ok("retry_failed"), { retried: 2 })
      const queued = (yield* c.ok("list", { status: "queued" })).tasks
      assert.deepStrictEqual(
        queued.map((t: Record<string, unknown>) => [t.task_id, t.worker_id, t.result, t.error, t.leased_until]),
        [
          [ids[1], null, null, null, null],
          [ids[0], null, null, null, null]
        ]
      )
      assert.deepStrictEqual(yield* c.ok("retry_failed"), { retried: 0 })
      const again = yield* c.ok("lease", { max_tasks: 5 })
      assert.deepStrictEqual(
        again.tasks.map((t: { task_id: number }) => t.task_id),
        [ids[0], ids[1]]
      )
    })
  )

  it.scopedLive("human tasks are never leased and end with approve", () =>
    Effect.gen(function* () {
      const { hub, port } = yield* kirosuHub()
      const c = yield* kirosuConnect(port)
      const human = (yield* c.ok("enqueue", { prompt: "ship it?", type: "human" })).task_id
      const kirisWorker = yield* Context.get(hub.context, TaskQueue).lease("kiris-worker" as WorkerId, ["human"], 10)
      assert.strictEqual(kirisWorker.length, 0, "a Kiris worker asking for human tasks gets none")
      const chat = (yield* c.ok("enqueue", { prompt: "chat" })).task_id
      const leased = yield* c.ok("lease", { max_tasks: 10 })
      assert.deepStrictEqual(
        leased.tasks.map((t: { task_id: number }) => t.task_id),
        [chat]
      )
      const notHuman = yield* c.call("approve", { task_id: chat })
      assert.include(notHuman.error?.message, "human")
      const missing = yield* c.call("approve", {})
      assert.include(missing.error?.message, "task_id")

      assert.deepStrictEqual(yield* c.ok("approve", { task_id: human }), { ok: true })
      const task = (yield* c.ok("list", { status: "done" })).tasks[0]
      assert.strictEqual(task.task_id, human)
      assert.strictEqual(task.type, "human")
      assert.strictEqual(task.worker_id, "human")
      assert.include(task.result, "Approved by human")
      const twice = yield* c.call("approve", { task_id: human })
      assert.isNotNull(twice.error)
    })
  )

  it.scopedLive("an expired lease goes back to the queue like any task's; a late ack is refused", () =>
    Effect.gen(function* () {
      // an expired lease is retried after the retry backoff, kept short here
      const { port } = yield* kirosuHub({ reaperIntervalMs: 50, taskRetryBaseMs: 20, taskRetryMaxMs: 20 })
      const c = yield* kirosuConnect(port)
      const id = (yield* c.ok("enqueue", { prompt: "slow" })).task_id
      yield* c.ok("lease", { worker_id: "vanishing", lease_seconds: 1 })
      const requeued = yield* c.ok("list", { status: "queued" }).pipe(
        Effect.flatMap((r) => (r.tasks[0] === undefined ? Effect.fail("still leased") : Effect.succeed(r.tasks[0]))),
        Effect.retry(Schedule.spaced("20 millis")),
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new TestFailure({ message: "the lease never expired" }) })
      )
      assert.strictEqual(requeued.task_id, id)
      assert.strictEqual(requeued.worker_id, null)
      assert.include(requeued.error, "lease expired")
      assert.include((yield* c.call("ack", { task_id: id, status: "done", result: "late" })).error?.message, "not leased")
      const again = yield* c.ok("lease", { worker_id: "second" }).pipe(
        Effect.filterOrFail(
          (r) => r.tasks.length > 0,
          () => "not leasable yet"
        ),
        Effect.retry(Schedule.spaced("20 millis")),
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new TestFailure({ message: "the task never became leasable again" }) })
      )
      assert.deepStrictEqual(
        again.tasks.map((t: { task_id: number; worker_id: string }) => [t.task_id, t.worker_id]),
        [[id, "second"]]
      )
      yield* c.ok("ack", { task_id: id, status: "done", result: "on time" })
      const done = (yield* c.ok("list", { status: "done" })).tasks[0]
      assert.deepStrictEqual([done.result, done.worker_id], ["on time", "second"])
    })
  )

  it.scopedLive("unknown methods and missing params are errors naming them; python tasks keep their code", () =>
    Effect.gen(function* () {
      const { port } = yield* kirosuHub({ kirosuKey: Option.some(Redacted.make("s3cret")) })
      const c = yield* kirosuConnect(port, { key: "s3cret" })
      const unknown = yield* c.call("frobnicate")
      assert.deepStrictEqual(unknown.error, { message: "Unknown method: frobnicate" })
      assert.strictEqual(unknown.result, null)
      assert.include((yield* c.call("enqueue", { system_prompt: "s" })).error?.message, "prompt")
      assert.include((yield* c.call("enqueue", { prompt: "p", type: "teleport" })).error?.message, "teleport")
      const py = (yield* c.ok("enqueue", { prompt: "print(6 * 7)", type: "python" })).task_id
      const leased = (yield* c.ok("lease")).tasks[0]
      assert.deepStrictEqual([leased.task_id, leased.type, leased.prompt], [py, "python", "print(6 * 7)"])
    })
  )

  it.scopedLive("a configured key: a wrong or missing auth_token fails, and the same connection then succeeds", () =>
    Effect.gen(function* () {
      const { port } = yield* kirosuHub({ kirosuKey: Option.some(Redacted.make("s3cret")) })
      const c = yield* kirosuConnect(port)
      const none = yield* c.call("stats")
      assert.strictEqual(none.result, null)
      assert.include(none.error?.message, "Invalid KIRO_SWARM_KEY")
      const wrong = yield* c.call("enqueue", { prompt: "x", auth_token: "nope" })
      assert.include(wrong.error?.message, "Invalid KIRO_SWARM_KEY")
      const shutdown = yield* c.call("shutdown", { auth_token: 42 })
      assert.include(shutdown.error?.message, "Invalid KIRO_SWARM_KEY")
      const ok = yield* c.call("stats", { auth_token: "s3cret" })
      assert.strictEqual(ok.error, null)
      assert.strictEqual(ok.result?.stats.total_tasks, 0)
    })
  )

  it.scopedLive("blank lines get no reply; whitespace and CRLF are tolerated", () =>
    Effect.gen(function* () {
      const { port } = yield* kirosuHub()
      const c = yield* kirosuConnect(port)
      yield* c.send("\n   \r\n\t\n")
      yield* c.send('  {"id":"first","method":"stats"}  \r\n')
      assert.strictEqual((yield* c.reply).id, "first")
      yield* c.send("\n\n")
      yield* c.send('{"id":"final","method":"stats"}\n')
      const final = yield* c.reply
      assert.strictEqual(final.id, "final", "the next line answers the next request: nothing was sent for blank lines")
      assert.strictEqual(yield* c.buffered, 0)
    })
  )

  it.scopedLive("pipelined requests in one write are answered in order, one line each", () =>
    Effect.gen(function* () {
      const { port } = yield* kirosuHub()
      const c = yield* kirosuConnect(port)
      const methods = ["enqueue", "stats", "frobnicate", "enqueue", "lease", "list", "enqueue", "stats"]
      const requests = methods.map((m, i) => c.request(m, m === "enqueue" ? { prompt: `p${i}` } : {}))
      yield* c.send(requests.map((r) => r.text).join("\n"))
      const replies = []
      for (let i = 0; i < requests.length; i++) replies.push(yield* c.reply)
      assert.deepStrictEqual(
        replies.map((r) => r.id),
        requests.map((r) => r.id)
      )
      assert.strictEqual(replies[2]?.error?.message, "Unknown method: frobnicate")
      assert.strictEqual(replies[4]?.result?.tasks[0].task_id, replies[0]?.result?.task_id)
      assert.strictEqual(replies[7]?.result?.stats.total_tasks, 3)
      yield* c.send('{"id":"last","method":"stats"}\n')
      assert.strictEqual((yield* c.reply).id, "last")
    })
  )

  it.scopedLive("a malformed or oversized line is answered with id null and the connection keeps working", () =>
    Effect.gen(function* () {
      const { port } = yield* kirosuHub({ maxFrameBytes: 1024 })
      const c = yield* kirosuConnect(port)
      yield* c.send("this is not json\n")
      const malformed = yield* c.reply
      assert.deepStrictEqual(Object.keys(malformed), ["id", "result", "error"])
      assert.strictEqual(malformed.id, null)
      assert.strictEqual(malformed.result, null)
      assert.include(malformed.error?.message, "JSON")
      yield* c.send("[1,2,3]\n")
      assert.strictEqual((yield* c.reply).id, null)
      yield* c.send('{"id":"m","method":["stats"]}\n')
      const badMethod = yield* c.reply
      assert.strictEqual(badMethod.id, "m")
      assert.include(badMethod.error?.message, "method")
      yield* c.send(JSON.stringify({ id: "big", method: "enqueue", params: { prompt: "x".repeat(2000) } }) + "\n")
      const big = yield* c.reply
      assert.strictEqual(big.id, null)
      assert.include(big.error?.message, "too long")
      const after = yield* c.call("enqueue", { prompt: "still here" })
      assert.strictEqual(after.result?.task_id, 1)
    })
  )

  it.scopedLive("five concurrent leasing clients never receive the same task", () =>
    Effect.gen(function* () {
      const { port } = yield* kirosuHub()
      const producer = yield* kirosuConnect(port)
      const total = 60
      const requests = Array.from({ length: total }, (_, i) => producer.request("enqueue", { prompt: `t${i}` }))
      yield* producer.send(requests.map((r) => r.text).join(""))
      for (let i = 0; i < total; i++) yield* producer.reply
      const clients = yield* Effect.forEach([1, 2, 3, 4, 5], () => kirosuConnect(port))
      const leasedBy = yield* Effect.forEach(
        clients,
        (c, i) =>
          Effect.gen(function* () {
            const mine: Array<number> = []
            while (true) {
              const { tasks } = yield* c.ok("lease", { worker_id: `w${i}`, max_tasks: 2 })
              if (tasks.length === 0) return mine
              for (const t of tasks) {
                assert.strictEqual(t.worker_id, `w${i}`)
                mine.push(t.task_id)
              }
            }
          }),
        { concurrency: "unbounded" }
      )
      const all = leasedBy.flat()
      assert.strictEqual(all.length, total)
      assert.strictEqual(new Set(all).size, total)
    })
  )

  it.scopedLive("shutdown replies ok and closes that connection; without --kirosu-allow-shutdown the hub keeps serving", () =>
    Effect.gen(function* () {
      const { port } = yield* kirosuHub()
      const c = yield* kirosuConnect(port)
      assert.deepStrictEqual(yield* c.ok("shutdown"), { ok: true })
      yield* c.closed
      const other = yield* kirosuConnect(port)
      assert.strictEqual((yield* other.ok("stats")).stats.total_tasks, 0)
    })
  )

  it.scopedLive("replies to every request sent before the client half-closes", () =>
    Effect.gen(function* () {
      const { port } = yield* kirosuHub()
      const c = yield* kirosuConnect(port)
      const requests = [c.request("enqueue", { prompt: "a" }), c.request("stats")]
      yield* c.send(requests.map((r) => r.text).join("") + '{"id":"tail","method":"stats"}')
      yield* c.end
      assert.strictEqual((yield* c.reply).id, requests[0]!.id)
      assert.strictEqual((yield* c.reply).id, requests[1]!.id)
      assert.strictEqual((yield* c.reply).id, "tail")
      yield* c.closed
    })
  )
})
