import { assert, layer } from "@effect/vitest"
import { Effect, Fiber, Schedule } from "effect"
import type { TaskId } from "../../src/domain/Ids.js"
import { ToolHarness } from "./Harness.js"

layer(ToolHarness.allowAll, { excludeTestServices: true })("enqueue tool", (it) => {
  it.effect("puts tasks of one kind on the project's queue and returns their ids", () =>
    Effect.gen(function* () {
      const h = yield* ToolHarness
      const out = yield* h.exec("enqueue", {
        kind: "chat",
        tasks: [{ payload: { prompt: "one" } }, { payload: { prompt: "two" }, priority: 5 }]
      })
      if (!out.ok) return assert.fail(out.error)
      const ids = out.metadata?.["taskIds"] as ReadonlyArray<TaskId>
      assert.strictEqual(ids.length, 2)
      assert.strictEqual(out.output, `${ids[0]} chat queued\n${ids[1]} chat queued`)
      const second = yield* h.client.task.get({ taskId: ids[1]! })
      assert.deepStrictEqual([second.projectId, second.kind, second.priority, second.payload], [h.project.id, "chat", 5, { prompt: "two" }])
    })
  )

  it.effect("refuses bad payloads and shell tasks for callers without the execute scope", () =>
    Effect.gen(function* () {
      const h = yield* ToolHarness
      const bad = yield* h.exec("enqueue", { kind: "shell", tasks: [{ payload: { cmd: "ls" } }] })
      assert.match(bad.ok ? "" : bad.error, /^InvalidInput: invalid shell payload/)
      const created = yield* h.client.key.create({ name: "no-exec-q", scopes: ["read", "write"] })
      const limited = yield* Effect.scoped(Effect.flatMap(h.hub.tcpClient(created.key), (c) => c.user.whoami()))
      const refused = yield* h.exec("enqueue", { kind: "shell", tasks: [{ payload: { command: "ls" } }] }, { caller: limited })
      assert.match(refused.ok ? "" : refused.error, /^Forbidden: running commands needs a key with the execute scope/)
      const empty = yield* h.exec("enqueue", { kind: "chat", tasks: [] })
      assert.match(empty.ok ? "" : empty.error, /^invalid arguments for enqueue/)
    })
  )

  it.effect("with waitSeconds, waits until the tasks end", () =>
    Effect.gen(function* () {
      const h = yield* ToolHarness
      const call = yield* Effect.fork(h.exec("enqueue", { kind: "chat", tasks: [{ payload: { prompt: "wait for me" } }], waitSeconds: 30 }))
      const task = yield* h.client.task.list({ projectId: h.project.id }).pipe(
        Effect.map((ts) => ts.find((t) => (t.payload as { prompt?: string }).prompt === "wait for me")),
        Effect.flatMap((t) => (t === undefined ? Effect.fail("not yet") : Effect.succeed(t))),
        Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("5 seconds"))),
        Effect.orDie
      )
      yield* h.client.task.cancel({ taskId: task.id })
      const out = yield* Fiber.join(call)
      assert.deepStrictEqual(out.ok ? out.output : out.error, `${task.id} chat cancelled`)
    })
  )
})
