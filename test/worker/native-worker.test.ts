import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Queue, type Scope } from "effect"
import { spawn } from "node:child_process"
import * as path from "node:path"
import type { TaskId } from "../../src/domain/Ids.js"
import { EnqueueTask } from "../../src/domain/Task.js"
import { byId, swarmHub, waitAll, workerKey } from "./swarm-support.js"
import { subscribeQueued } from "../support/Subscribe.js"

/** A worker written in Python against the native NDJSON RPC protocol (not the Kirosu port). */

const workerScript = path.join(import.meta.dirname, "..", "support", "native_worker.py")

type WorkerEvent = { readonly event: string } & Record<string, any>

interface PythonWorker {
  /** Waits for the next printed event (after those already returned) matching `match`. */
  readonly waitFor: (match: (e: WorkerEvent) => boolean, what: string) => Effect.Effect<WorkerEvent>
  readonly events: () => ReadonlyArray<WorkerEvent>
  /** Closes the worker's stdin, which asks it to stop. */
  readonly stop: Effect.Effect<void>
  readonly exited: Effect.Effect<number | null>
}

/** Runs the Python worker for the caller's scope (killed if still running when the scope closes). */
const startPythonWorker = (args: ReadonlyArray<string>, key: string): Effect.Effect<PythonWorker, never, Scope.Scope> =>
  Effect.gen(function* () {
    const closed = yield* Deferred.make<number | null>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => spawn("python3", [workerScript, ...args], { env: { ...process.env, KIRIS_TOKEN: key }, stdio: "pipe" })),
      (c) =>
        c.exitCode === null && c.signalCode === null
          ? Effect.sync(() => c.kill("SIGKILL")).pipe(Effect.zipRight(Deferred.await(closed)))
          : Effect.void
    )
    const events: Array<WorkerEvent> = []
    const lines = yield* Queue.unbounded<WorkerEvent | null>()
    let partial = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      const parts = (partial + d).split("\n")
      partial = parts.pop()!
      for (const line of parts) {
        const event = JSON.parse(line) as WorkerEvent
        events.push(event)
        Queue.unsafeOffer(lines, event)
      }
    })
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.once("close", (code) => {
      Queue.unsafeOffer(lines, null)
      Deferred.unsafeDone(closed, Effect.succeed(code))
    })
    const describeRun = () => `events:\n${events.map((e) => JSON.stringify(e)).join("\n")}\nstderr:\n${stderr}`
    const waitFor = (match: (e: WorkerEvent) => boolean, what: string): Effect.Effect<WorkerEvent> =>
      Effect.gen(function* () {
        for (;;) {
          const event = yield* Queue.take(lines)
          if (event === null) return yield* Effect.dieMessage(`the worker exited before ${what}\n${describeRun()}`)
          if (match(event)) return event
        }
      }).pipe(
        Effect.timeoutFail({ duration: Duration.seconds(30), onTimeout: () => new Error(`timed out waiting for ${what}\n${describeRun()}`) }),
        Effect.orDie
      )
    return {
      waitFor,
      events: () => events,
      stop: Effect.sync(() => void child.stdin.end()),
      exited: Deferred.await(closed)
    }
  })

const pythonArgs = (tcpPort: number, ...more: ReadonlyArray<string>) => ["--port", String(tcpPort), "--name", "py-native", ...more]

describe("a worker in Python speaking the native protocol", () => {
  it.scopedLive("registers, leases, heartbeats and completes or fails each task exactly once, with its own results", () =>
    Effect.gen(function* () {
      const { admin, hub, key, projectId } = yield* swarmHub
      const items = yield* subscribeQueued(admin, projectId)

      const worker = yield* startPythonWorker(pythonArgs(hub.tcpPort, "--kinds", "noop,chat", "--capacity", "2"), key)
      const registered = yield* worker.waitFor((e) => e.event === "registered", "its registration")
      const workerId = registered.workerId as string
      assert.match(workerId, /^wrk_/)
      assert.strictEqual(registered.leaseSeconds, 300)
      const listed = (yield* admin.task.workers()).find((w) => w.id === workerId)
      assert.deepStrictEqual([listed?.name, listed?.connected, listed?.kinds], ["py-native", true, ["noop", "chat"]])

      const texts = ["alpha", "Bravo two", "charlie"]
      const noops = yield* Effect.forEach(texts, (text) => admin.task.enqueue(EnqueueTask.make({ projectId, kind: "noop", payload: { text } })))
      const chat = yield* admin.task.enqueue(EnqueueTask.make({ projectId, kind: "chat", payload: { prompt: "hello world" } }))
      const failing = yield* admin.task.enqueue(
        EnqueueTask.make({ projectId, kind: "noop", payload: { fail: "cannot do this one", retryable: false }, maxAttempts: 3 })
      )
      const ids = [...noops.map((t) => t.id), chat.id, failing.id]

      const tasks = byId(yield* waitAll(admin, ids, 30_000))
      const result = (text: string) => ({ upper: text.toUpperCase(), reversed: [...text].reverse().join(""), worker: "py-native" })
      for (const [i, task] of noops.entries()) {
        const t = yield* admin.task.get({ taskId: task.id })
        assert.deepStrictEqual([t.status, t.result, t.error, t.attempts, t.workerId], ["done", result(texts[i]!), null, 1, workerId], t.id)
      }
      const chatDone = tasks.get(chat.id)!
      assert.deepStrictEqual([chatDone.status, chatDone.result, chatDone.attempts], ["done", result("hello world"), 1])
      const failed = tasks.get(failing.id)!
      assert.deepStrictEqual(
        [failed.status, failed.error, failed.result, failed.attempts],
        ["failed", "cannot do this one", null, 1],
        "a non-retryable failure ends the task at once"
      )

      // Each task was leased, heartbeated and reported once, and the hub accepted every heartbeat:
      // it extended the lease (expiresAt) and kept the progress it carried.
      const seen = (event: string, taskId: TaskId) => worker.events().filter((e) => e.event === event && e.taskId === taskId)
      for (const id of ids) {
        assert.strictEqual(seen("leased", id).length, 1, id)
        const beats = seen("heartbeat", id)
        assert.strictEqual(beats.length, 1, id)
        assert.isFalse(beats[0]!.cancelled)
        assert.isAbove(beats[0]!.expiresAt, Date.now() + 200_000, "the lease runs for the hub's 300 s")
        assert.strictEqual(seen(id === failing.id ? "failed" : "completed", id).length, 1, id)
        assert.deepStrictEqual(tasks.get(id)!.progress, { stage: "running", worker: "py-native" })
      }
      assert.deepStrictEqual(
        worker.events().filter((e) => e.event === "refused" || e.event === "defect" || e.event === "lost"),
        [],
        "no call was refused"
      )

      // The chat task's task.progress reached the project's event stream.
      for (;;) {
        const item = yield* Queue.take(items)
        if (item._tag === "Event" && item.event.event._tag === "TaskProgress") {
          assert.deepStrictEqual([item.event.event.taskId, item.event.event.parts], [chat.id, [{ type: "text", text: "dlrow olleh" }]])
          break
        }
      }

      yield* worker.stop
      assert.deepStrictEqual(yield* worker.waitFor((e) => e.event === "stopped", "it stopped"), { event: "stopped", workerId, reported: 5 })
      assert.strictEqual(yield* worker.exited, 0)
    })
  )

  it.scopedLive(
    "keeps its leases across a reconnect with the same key and worker id; another key cannot take the id; a newer connection takes it over",
    () =>
      Effect.gen(function* () {
        const { admin, hub, key, projectId } = yield* swarmHub
        const task = yield* admin.task.enqueue(EnqueueTask.make({ projectId, kind: "noop", payload: { text: "survives" } }))

        const worker = yield* startPythonWorker(pythonArgs(hub.tcpPort, "--kinds", "noop", "--drop-after-lease", "--tasks", "1"), key)
        const first = yield* worker.waitFor((e) => e.event === "registered", "its registration")
        yield* worker.waitFor((e) => e.event === "leased" && e.taskId === task.id, "the lease")
        yield* worker.waitFor((e) => e.event === "disconnected", "the dropped connection")
        const again = yield* worker.waitFor((e) => e.event === "registered", "the second registration")
        assert.strictEqual(again.workerId, first.workerId, "the worker id is reclaimed")
        assert.isAbove(again.generation, first.generation)
        yield* worker.waitFor((e) => e.event === "heartbeat" && e.taskId === task.id, "the heartbeat on the new connection")
        yield* worker.waitFor((e) => e.event === "completed" && e.taskId === task.id, "the completion on the new connection")
        assert.strictEqual(yield* worker.exited, 0)
        const [done] = yield* waitAll(admin, [task.id], 30_000)
        assert.deepStrictEqual([done!.status, done!.attempts, done!.workerId], ["done", 1, first.workerId])
        assert.deepStrictEqual(done!.result, { upper: "SURVIVES", reversed: "sevivrus", worker: "py-native" })

        // A new process with the same key reclaims the id; one with another key is refused.
        const restarted = yield* startPythonWorker(pythonArgs(hub.tcpPort, "--worker-id", first.workerId), key)
        assert.strictEqual((yield* restarted.waitFor((e) => e.event === "registered", "the restarted registration")).workerId, first.workerId)
        const otherKey = yield* workerKey(admin)
        const thief = yield* startPythonWorker(pythonArgs(hub.tcpPort, "--worker-id", first.workerId), otherKey)
        const rejected = yield* thief.waitFor((e) => e.event === "rejected", "the refusal")
        assert.deepStrictEqual(rejected.failure.error, { _tag: "Forbidden", reason: `worker id ${first.workerId} belongs to another key` })
        assert.strictEqual(yield* thief.exited, 2)

        // A second connection registering the same id takes it over: the first one's stream ends.
        const successor = yield* startPythonWorker(pythonArgs(hub.tcpPort, "--worker-id", first.workerId), key)
        assert.strictEqual((yield* successor.waitFor((e) => e.event === "registered", "the takeover")).workerId, first.workerId)
        yield* restarted.waitFor((e) => e.event === "replaced", "the end of the replaced registration")
        assert.strictEqual(yield* restarted.exited, 0)
        const listed = (yield* admin.task.workers()).filter((w) => w.id === first.workerId)
        assert.deepStrictEqual(
          listed.map((w) => [w.connected, w.name]),
          [[true, "py-native"]]
        )
        yield* successor.stop
        assert.strictEqual(yield* successor.exited, 0)
      })
  )
})
