import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import * as childProcess from "node:child_process"
import * as path from "node:path"
import type { ProjectId } from "../../../src/domain/Ids.js"
import { EnqueueTask } from "../../../src/domain/Task.js"
import { startHub, type TestHub } from "../../support/Hub.js"
import { kirosuConnect } from "../../support/KirosuClient.js"
import { subscribeQueued, takeWithin } from "../../support/Subscribe.js"

/** Kirosu clients and agents next to Kiris clients on one hub: one queue, seen from both sides. */

const workerScript = path.join(import.meta.dirname, "..", "..", "support", "kirosu_worker.py")

const runPython = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.async<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = childProcess.execFile(
      "python3",
      [workerScript, ...args],
      { env: { ...process.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resume(Effect.succeed({ code: error === null ? 0 : (error.code as number | null), stdout, stderr }))
    )
    return Effect.sync(() => void child.kill())
  })

const kirosuProject = (hub: TestHub) =>
  Effect.gen(function* () {
    const client = yield* hub.tcpClient()
    const projects = yield* client.project.list()
    const project = projects.find((p) => p.name === "kirosu")
    assert.isDefined(project, "the kirosu project exists after the first Kirosu request")
    return { client, projectId: project!.id as ProjectId }
  })

const kirosuHub = (key?: string) =>
  Effect.gen(function* () {
    const hub = yield* startHub({
      kirosuPort: Option.some(0),
      ...(key === undefined ? {} : { kirosuKey: Option.some(Redacted.make(key)) })
    })
    return { hub, port: hub.kirosuPort! }
  })

describe("kirosu interop", () => {
  it.scopedLive("a Python Kirosu agent leases, runs and acks tasks; results show through Kirosu and through Kiris RPC", () =>
    Effect.gen(function* () {
      const { hub, port } = yield* kirosuHub("agent-key")
      const c = yield* kirosuConnect(port, { key: "agent-key" })
      const chat = (yield* c.ok("enqueue", { prompt: "hello world" })).task_id
      const withSystem = (yield* c.ok("enqueue", { prompt: "abc", system_prompt: "sys" })).task_id
      const python = (yield* c.ok("enqueue", { prompt: "print(6 * 7)", type: "python" })).task_id
      const failing = (yield* c.ok("enqueue", { prompt: "please FAIL" })).task_id
      const human = (yield* c.ok("enqueue", { prompt: "needs a person", type: "human" })).task_id

      const run = yield* runPython(["--port", String(port), "--tasks", "4", "--worker-id", "py-agent", "--max-tasks", "2"], {
        KIRO_SWARM_KEY: "agent-key"
      })
      assert.strictEqual(run.code, 0, run.stderr)
      const lines = run.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
      assert.deepStrictEqual(lines.at(-1), { done: 4, worker_id: "py-agent" })

      const expected = new Map<number, { status: string; result: string | null; error: string | null }>([
        [chat, { status: "done", result: "dlrow olleh", error: null }],
        [withSystem, { status: "done", result: "[sys] cba", error: null }],
        [python, { status: "done", result: "42\n", error: null }],
        [failing, { status: "failed", result: null, error: "asked to fail: please FAIL" }],
        [human, { status: "queued", result: null, error: null }]
      ])
      const { tasks, stats } = yield* c.ok("list", { limit: 0 })
      assert.strictEqual(tasks.length, 5)
      for (const t of tasks) {
        assert.deepStrictEqual({ status: t.status, result: t.result, error: t.error }, expected.get(t.task_id), `task ${t.task_id}`)
        if (t.task_id !== human) assert.strictEqual(t.worker_id, "py-agent")
      }
      assert.strictEqual(stats.done, 3)
      assert.strictEqual(stats.failed, 1)
      assert.strictEqual(stats.queued, 1)
      assert.strictEqual(stats.error_rate_percent, 25)

      const { client, projectId } = yield* kirosuProject(hub)
      const kiris = yield* client.task.list({ projectId, limit: 100 })
      assert.strictEqual(kiris.length, 5)
      const bySeq = new Map(kiris.map((t) => [t.seq, t]))
      const pyTask = bySeq.get(python)!
      assert.strictEqual(pyTask.kind, "python")
      assert.deepStrictEqual(pyTask.payload, { command: "print(6 * 7)" })
      const chatTask = yield* client.task.get({ taskId: bySeq.get(chat)!.id })
      assert.strictEqual(chatTask.status, "done")
      assert.strictEqual(chatTask.result, "dlrow olleh")
      assert.strictEqual(chatTask.workerId, "py-agent")
      assert.deepStrictEqual(chatTask.payload, { prompt: "hello world" })
      assert.deepStrictEqual(bySeq.get(withSystem)!.payload, { prompt: "abc", system: "sys" })
      const failed = yield* client.task.get({ taskId: bySeq.get(failing)!.id })
      assert.strictEqual(failed.status, "failed")
      assert.strictEqual(failed.error, "asked to fail: please FAIL")
      assert.strictEqual(bySeq.get(human)!.kind, "human")
      // Kirosu shows it as queued (above); Kiris says it waits for input
      assert.strictEqual(bySeq.get(human)!.status, "input_required")
    })
  )

  it.scopedLive("a chat task enqueued through Kiris is leased by a Kirosu agent with its prompt, and its ack reaches Kiris", () =>
    Effect.gen(function* () {
      const { hub, port } = yield* kirosuHub()
      const c = yield* kirosuConnect(port)
      yield* c.ok("stats")
      const { client, projectId } = yield* kirosuProject(hub)
      const task = yield* client.task.enqueue(
        EnqueueTask.make({ projectId, kind: "chat", payload: { prompt: "from kiris", system: "you are terse" } })
      )
      const leased = (yield* c.ok("lease", { worker_id: "kirosu-agent" })).tasks
      assert.strictEqual(leased.length, 1)
      assert.deepStrictEqual(
        [leased[0].task_id, leased[0].prompt, leased[0].system_prompt, leased[0].type],
        [task.seq, "from kiris", "you are terse", "chat"]
      )
      const whileLeased = yield* client.task.get({ taskId: task.id })
      assert.strictEqual(whileLeased.status, "leased")
      assert.strictEqual(whileLeased.workerId, "kirosu-agent")
      yield* c.ok("ack", { task_id: task.seq, status: "done", result: "short answer" })
      const done = yield* client.task.get({ taskId: task.id })
      assert.strictEqual(done.status, "done")
      assert.strictEqual(done.result, "short answer")
    })
  )

  it.scopedLive("a task cancelled through Kiris shows as failed with its error", () =>
    Effect.gen(function* () {
      const { hub, port } = yield* kirosuHub()
      const c = yield* kirosuConnect(port)
      const id = (yield* c.ok("enqueue", { prompt: "never mind" })).task_id
      const { client, projectId } = yield* kirosuProject(hub)
      const [task] = yield* client.task.list({ projectId })
      yield* client.task.cancel({ taskId: task!.id })
      const shown = (yield* c.ok("list")).tasks[0]
      assert.deepStrictEqual([shown.task_id, shown.status, shown.error], [id, "failed", "cancelled"])
      const stats = (yield* c.ok("stats")).stats
      assert.deepStrictEqual([stats.failed, stats.error_rate_percent], [1, 100])
      assert.deepStrictEqual(yield* c.ok("retry_failed"), { retried: 0 }, "cancelled tasks are not retried")
    })
  )

  it.scopedLive("Kirosu changes are published to events.subscribe of the kirosu project", () =>
    Effect.gen(function* () {
      const { hub, port } = yield* kirosuHub()
      const c = yield* kirosuConnect(port)
      yield* c.ok("stats")
      const { client, projectId } = yield* kirosuProject(hub)
      const items = yield* subscribeQueued(client, projectId)
      const next = takeWithin(items, "an event")
      const id = (yield* c.ok("enqueue", { prompt: "watch me" })).task_id
      const seen = new Set<string>()
      yield* c.ok("lease")
      yield* c.ok("ack", { task_id: id, status: "done", result: "r" })
      while (!seen.has("done")) {
        const item = yield* next
        if (item._tag !== "Event" || item.event.event._tag !== "TasksChanged") continue
        for (const t of item.event.event.tasks) if (t.seq === id) seen.add(t.status)
      }
      assert.isTrue(seen.has("queued") && seen.has("leased") && seen.has("done"), [...seen].join(","))
    })
  )
})
