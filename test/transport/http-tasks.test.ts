import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue, Stream } from "effect"
import type { WorkerPush } from "../../src/domain/rpc/WorkerRpcs.js"
import { startHub, type TestHub } from "../support/Hub.js"
import { request, TASK_OPERATIONS, type Reply } from "../support/Http.js"

/** Asserts the status (and the error tag), then returns the JSON body. */
const expect = (reply: Reply, status: number, tag?: string) => {
  assert.strictEqual(reply.status, status, reply.text.slice(0, 500))
  if (tag !== undefined) assert.strictEqual(reply.json?._tag, tag, reply.text.slice(0, 500))
  return reply.json
}

const call = (hub: TestHub, token: string, method: string, route: string, status: number, body?: unknown, tag?: string) =>
  Effect.map(request(hub, method, route, body === undefined ? { token } : { token, body }), (reply) => expect(reply, status, tag))

const ids = (tasks: ReadonlyArray<{ id: string }>) => tasks.map((t) => t.id).sort()

const newProject = (hub: TestHub, name: string) => Effect.map(call(hub, hub.adminKey, "POST", "/api/projects", 201, { name }), (p) => p.id as string)

const newUser = (hub: TestHub, name: string) =>
  Effect.gen(function* () {
    const password = `${name}-password`
    yield* call(hub, hub.adminKey, "POST", "/api/users", 201, { name, password })
    return (yield* request(hub, "POST", "/api/auth/login", { body: { name, password } })).json.token as string
  })

describe("HTTP: the swarm task endpoints", () => {
  it.scopedLive("enqueues, reads, lists, counts, cancels, retries, approves, waits and maps", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const admin = hub.adminKey
      const p1 = yield* newProject(hub, "p1")
      const p2 = yield* newProject(hub, "p2")

      const t1 = yield* call(hub, admin, "POST", "/api/tasks", 201, { projectId: p1, kind: "noop", payload: { n: 1 } })
      assert.deepInclude(t1, { projectId: p1, kind: "noop", status: "queued", payload: { n: 1 }, priority: 0, maxAttempts: 3 })
      assert.match(t1.id, /^tsk_/)
      const got = yield* call(hub, admin, "GET", `/api/tasks/${t1.id}`, 200)
      assert.deepStrictEqual(got, t1)
      const missing = yield* call(hub, admin, "GET", "/api/tasks/tsk_nope", 404, undefined, "NotFound")
      assert.deepInclude(missing, { entity: "task", id: "tsk_nope" })

      // Static segments win over `:taskId`: batch, stats, wait and map are not read as task ids.
      const batch = yield* call(hub, admin, "POST", "/api/tasks/batch", 201, {
        tasks: [
          { projectId: p2, kind: "noop", payload: 1 },
          { projectId: p2, kind: "noop", payload: 2, priority: 5 }
        ]
      })
      assert.deepStrictEqual(
        batch.map((t: { payload: number }) => t.payload),
        [1, 2]
      )
      yield* call(hub, admin, "POST", "/api/tasks/batch", 400, { tasks: [{ projectId: p2, kind: "shell", payload: { nope: 1 } }] }, "InvalidInput")
      yield* call(hub, admin, "POST", "/api/tasks", 400, { projectId: p1, kind: "teleport", payload: 1 }, "HttpApiDecodeError")

      assert.deepStrictEqual(ids(yield* call(hub, admin, "GET", `/api/tasks?projectId=${p1}`, 200)), [t1.id])
      assert.deepStrictEqual(ids(yield* call(hub, admin, "GET", `/api/tasks?projectId=${p2}&kind=noop`, 200)), ids(batch))
      assert.strictEqual((yield* call(hub, admin, "GET", "/api/tasks?kind=noop&limit=1", 200)).length, 1)
      assert.strictEqual((yield* call(hub, admin, "GET", "/api/tasks?status=queued", 200)).length, 3)
      assert.deepStrictEqual(yield* call(hub, admin, "GET", "/api/tasks?kind=shell", 200), [])
      yield* call(hub, admin, "GET", "/api/tasks?status=sleeping", 400, undefined, "HttpApiDecodeError")
      yield* call(hub, admin, "GET", "/api/tasks?limit=many", 400, undefined, "HttpApiDecodeError")

      assert.deepInclude(yield* call(hub, admin, "GET", `/api/tasks/stats?projectId=${p2}`, 200), { queued: 2, cancelled: 0, workers: 0 })
      assert.deepInclude(yield* call(hub, admin, "GET", "/api/tasks/stats", 200), { queued: 3, done: 0 })

      // A short wait on a queued task answers with its current state.
      const waited = yield* call(hub, admin, "POST", "/api/tasks/wait", 200, { taskIds: [t1.id], timeoutMs: 50 })
      assert.deepStrictEqual(
        waited.map((t: { id: string; status: string }) => [t.id, t.status]),
        [[t1.id, "queued"]]
      )

      const cancelled = yield* call(hub, admin, "POST", `/api/tasks/${t1.id}/cancel`, 200)
      assert.strictEqual(cancelled.status, "cancelled")
      assert.deepStrictEqual(ids(yield* call(hub, admin, "GET", "/api/tasks?status=cancelled", 200)), [t1.id])
      assert.deepInclude(yield* call(hub, admin, "GET", `/api/tasks/stats?projectId=${p1}`, 200), { queued: 0, cancelled: 1 })
      // An ended task needs no timeout: the wait resolves at once.
      const ended = yield* call(hub, admin, "POST", "/api/tasks/wait", 200, { taskIds: [t1.id] })
      assert.strictEqual(ended[0].status, "cancelled")

      const retried = yield* call(hub, admin, "POST", `/api/tasks/${t1.id}/retry`, 200)
      assert.deepInclude(retried, { id: t1.id, status: "queued", attempts: 0 })
      yield* call(hub, admin, "POST", `/api/tasks/${t1.id}/retry`, 400, undefined, "InvalidInput")
      yield* call(hub, admin, "POST", "/api/tasks/tsk_nope/cancel", 404, undefined, "NotFound")

      const human = yield* call(hub, admin, "POST", "/api/tasks", 201, { projectId: p1, kind: "human", payload: { ask: "ship it?" } })
      const approved = yield* call(hub, admin, "POST", `/api/tasks/${human.id}/approve`, 200, { result: { ok: true } })
      assert.deepInclude(approved, { status: "done", result: { ok: true } })
      yield* call(hub, admin, "POST", `/api/tasks/${t1.id}/approve`, 400, {}, "InvalidInput")

      const mapped = yield* call(hub, admin, "POST", "/api/tasks/map", 201, {
        projectId: p1,
        kind: "noop",
        items: ["a", "b", "c"],
        reduce: { sum: true },
        policy: "quorum:2"
      })
      assert.deepStrictEqual(
        mapped.mapTasks.map((t: { payload: string; status: string }) => `${t.payload}:${t.status}`),
        ["a:queued", "b:queued", "c:queued"]
      )
      assert.deepInclude(mapped.reduceTask, { kind: "noop", status: "waiting", payload: { sum: true } })
      assert.deepStrictEqual([...mapped.reduceTask.dependsOn].sort(), ids(mapped.mapTasks))
      const plain = yield* call(hub, admin, "POST", "/api/tasks/map", 201, { projectId: p2, kind: "noop", items: [1] })
      assert.deepStrictEqual([plain.mapTasks.length, plain.reduceTask], [1, null])
      yield* call(hub, admin, "POST", "/api/tasks/map", 400, { projectId: p1, kind: "noop", items: [] }, "InvalidInput")
      yield* call(hub, admin, "POST", "/api/tasks/map", 400, { projectId: p1, kind: "noop", items: [1], policy: "quorum:5" }, "InvalidInput")
      assert.deepInclude(yield* call(hub, admin, "GET", `/api/tasks/stats?projectId=${p1}`, 200), { queued: 4, waiting: 1, done: 1 })
    })
  )

  it.scopedLive("lists connected workers and resolves a wait when a worker completes the task", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const project = yield* newProject(hub, "work")
      assert.deepStrictEqual(yield* call(hub, hub.adminKey, "GET", "/api/workers", 200), [])

      const workerKey = (yield* call(hub, hub.adminKey, "POST", "/api/keys", 201, { name: "w", scopes: ["worker"] })).key as string
      const w = yield* hub.tcpClient(workerKey)
      const pushes = yield* Queue.unbounded<WorkerPush>()
      yield* w.worker.connect({ name: "w1", kinds: ["noop"], capacity: 2 }).pipe(
        Stream.runForEach((p) => Queue.offer(pushes, p)),
        Effect.forkScoped
      )
      const registered = yield* Queue.take(pushes)
      assert.strictEqual(registered._tag, "Registered")
      const workerId = registered._tag === "Registered" ? registered.workerId : undefined!

      const task = yield* call(hub, hub.adminKey, "POST", "/api/tasks", 201, { projectId: project, kind: "noop", payload: "x" })
      const [lease] = yield* w.task.lease({ workerId, kinds: ["noop"], max: 1 })
      assert.strictEqual(lease?.task.id, task.id)
      const workers = yield* call(hub, hub.adminKey, "GET", "/api/workers", 200)
      assert.deepStrictEqual(
        workers.map((x: any) => [x.id, x.name, x.connected, x.inFlight]),
        [[workerId, "w1", true, 1]]
      )
      assert.deepInclude(yield* call(hub, hub.adminKey, "GET", "/api/tasks/stats", 200), { leased: 1, workers: 1 })

      const waiting = yield* Effect.fork(call(hub, hub.adminKey, "POST", "/api/tasks/wait", 200, { taskIds: [task.id], timeoutMs: 30_000 }))
      yield* w.task.complete({ taskId: task.id, fencingToken: lease!.fencingToken, result: { echoed: "x" } })
      const [done] = yield* Effect.flatMap(waiting.await, (exit) => exit)
      assert.deepInclude(done, { id: task.id, status: "done", result: { echoed: "x" } })
    })
  )

  it.scopedLive("checks tokens, project roles and the execute capability", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const project = yield* newProject(hub, "guarded")
      const vera = yield* newUser(hub, "vera")
      const victor = yield* newUser(hub, "victor")
      const carl = yield* newUser(hub, "carl")
      yield* call(hub, hub.adminKey, "POST", `/api/projects/${project}/members`, 200, { user: "vera", role: "member", execute: true })
      yield* call(hub, hub.adminKey, "POST", `/api/projects/${project}/members`, 200, { user: "victor", role: "viewer" })
      const task = yield* call(hub, hub.adminKey, "POST", "/api/tasks", 201, { projectId: project, kind: "noop", payload: 0 })
      const noop = { projectId: project, kind: "noop", payload: 1 }

      // No token: 401 on every task endpoint.
      for (const op of TASK_OPERATIONS) {
        const [method, pattern] = op.split(" ") as [string, string]
        const route = pattern.replace("{taskId}", task.id)
        const body = method === "post" ? {} : undefined
        expect(yield* request(hub, method.toUpperCase(), route, body === undefined ? {} : { body }), 401, "Unauthorized")
      }
      expect(yield* request(hub, "GET", `/api/tasks/${task.id}`, { token: "kiris_forged" }), 401, "Unauthorized")

      // A viewer reads but may not change anything.
      assert.strictEqual((yield* call(hub, victor, "GET", `/api/tasks/${task.id}`, 200)).id, task.id)
      assert.deepStrictEqual(ids(yield* call(hub, victor, "GET", "/api/tasks", 200)), [task.id])
      assert.deepInclude(yield* call(hub, victor, "GET", `/api/tasks/stats?projectId=${project}`, 200), { queued: 1 })
      const denied = yield* call(hub, victor, "POST", "/api/tasks", 403, noop, "Forbidden")
      assert.match(denied.reason, /member/)
      yield* call(hub, victor, "POST", "/api/tasks/batch", 403, { tasks: [noop] }, "Forbidden")
      yield* call(hub, victor, "POST", `/api/tasks/${task.id}/cancel`, 403, undefined, "Forbidden")
      yield* call(hub, victor, "POST", "/api/tasks/map", 403, { projectId: project, kind: "noop", items: [1] }, "Forbidden")

      // A non-member cannot tell the project or its tasks exist.
      const hidden = yield* call(hub, carl, "GET", `/api/tasks/${task.id}`, 404, undefined, "NotFound")
      assert.deepInclude(hidden, { entity: "project", id: project })
      yield* call(hub, carl, "POST", "/api/tasks", 404, noop, "NotFound")
      yield* call(hub, carl, "GET", `/api/tasks?projectId=${project}`, 404, undefined, "NotFound")
      assert.deepStrictEqual(yield* call(hub, carl, "GET", "/api/tasks", 200), [])
      yield* call(hub, carl, "GET", `/api/tasks/stats?projectId=${project}`, 404, undefined, "NotFound")
      yield* call(hub, carl, "POST", "/api/tasks/wait", 404, { taskIds: [task.id], timeoutMs: 10 }, "NotFound")
      yield* call(hub, carl, "POST", `/api/tasks/${task.id}/retry`, 404, undefined, "NotFound")

      // Shell and python need the execute capability: a key without the `execute` scope is refused.
      const key = (yield* call(hub, vera, "POST", "/api/keys", 201, { name: "ci", scopes: ["read", "write"] })).key as string
      const shell = { projectId: project, kind: "shell", payload: { command: "echo hi" } }
      const refused = yield* call(hub, key, "POST", "/api/tasks", 403, shell, "Forbidden")
      assert.match(refused.reason, /execute/)
      yield* call(hub, key, "POST", "/api/tasks/batch", 403, { tasks: [noop, { ...shell, kind: "python" }] }, "Forbidden")
      yield* call(hub, key, "POST", "/api/tasks/map", 403, { projectId: project, kind: "shell", items: [{ command: "true" }] }, "Forbidden")
      assert.strictEqual((yield* call(hub, key, "POST", "/api/tasks", 201, noop)).kind, "noop")
      assert.strictEqual((yield* call(hub, vera, "POST", "/api/tasks", 201, shell)).kind, "shell")
      const executeKey = (yield* call(hub, vera, "POST", "/api/keys", 201, { name: "exec", scopes: ["write", "execute"] })).key as string
      yield* call(hub, executeKey, "POST", "/api/tasks", 201, shell)
      assert.deepInclude(yield* call(hub, vera, "GET", `/api/tasks/stats?projectId=${project}`, 200), { queued: 4 })
    })
  )

  it.scopedLive("describes every task endpoint, its statuses and bearer security in /openapi.json", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const spec = expect(yield* request(hub, "GET", "/openapi.json"), 200)
      for (const op of TASK_OPERATIONS) {
        const [method, route] = op.split(" ") as [string, string]
        const operation = spec.paths[route]?.[method]
        assert.isDefined(operation, `${op} is documented`)
        assert.deepInclude(operation.security, { bearer: [] }, `${op} is bearer-protected`)
        assert.property(operation.responses, "401", `${op} documents 401`)
      }
      const responses = (op: string) => Object.keys(spec.paths[op.split(" ")[1]!][op.split(" ")[0]!].responses).sort()
      assert.deepStrictEqual(responses("post /api/tasks"), ["201", "400", "401", "403", "404"])
      assert.deepStrictEqual(responses("post /api/tasks/map"), ["201", "400", "401", "403", "404"])
      assert.deepStrictEqual(responses("get /api/tasks/{taskId}"), ["200", "400", "401", "403", "404"])
      const refusal = JSON.stringify(spec.paths["/api/tasks"].post.responses["403"])
      assert.include(refusal, "Forbidden")
      const listParams = spec.paths["/api/tasks"].get.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`).sort()
      assert.deepStrictEqual(listParams, ["query:kind", "query:limit", "query:projectId", "query:status"])
    })
  )
})
