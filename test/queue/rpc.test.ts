import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Queue, Stream } from "effect"
import type { HubRpcClient } from "../../src/client/HubClient.js"
import type { SubscriptionItem } from "../../src/domain/Event.js"
import type { WorkerId } from "../../src/domain/Ids.js"
import type { WorkerPush } from "../../src/domain/rpc/WorkerRpcs.js"
import { EnqueueTask } from "../../src/domain/Task.js"
import { startHub } from "../support/Hub.js"
import { backendConfig, backends } from "../support/Pg.js"

/** Registers a worker on `client`'s connection for the test's scope; its id. */
const register = (client: HubRpcClient, name = "w") =>
  Effect.gen(function* () {
    const pushes = yield* Queue.unbounded<WorkerPush>()
    yield* client.worker.connect({ name, kinds: ["noop"], capacity: 4 }).pipe(
      Stream.runForEach((p) => Queue.offer(pushes, p)),
      Effect.forkScoped
    )
    const registered = yield* Queue.take(pushes)
    return registered._tag === "Registered" ? registered.workerId : (undefined as never as WorkerId)
  })

describe.each(backends)("swarm RPCs on %s", (backend) => {
  it.scopedLive("a worker connects, is pushed work, leases and completes over TCP", () =>
    Effect.gen(function* () {
      const hub = yield* startHub(yield* backendConfig(backend))
      const admin = yield* hub.tcpClient()
      const project = yield* admin.project.create({ name: "swarm", description: "" })
      const key = yield* admin.key.create({ name: "w", scopes: ["worker"] })
      const w = yield* hub.tcpClient(key.key)
      const pushes = yield* Queue.unbounded<WorkerPush>()
      yield* w.worker.connect({ name: "w1", kinds: ["noop"], capacity: 4 }).pipe(
        Stream.runForEach((p) => Queue.offer(pushes, p)),
        Effect.forkScoped
      )
      const registered = yield* Queue.take(pushes)
      assert.strictEqual(registered._tag, "Registered")
      const workerId = registered._tag === "Registered" ? registered.workerId : undefined!
      assert.strictEqual((yield* Queue.take(pushes))._tag, "WorkAvailable")

      const t = yield* admin.task.enqueue({ projectId: project.id, kind: "noop", payload: { x: 1 } })
      assert.deepStrictEqual(yield* Queue.take(pushes), { _tag: "WorkAvailable", kinds: ["noop"] })
      const leases = yield* w.task.lease({ workerId, kinds: ["noop"], max: 5 })
      assert.strictEqual(leases.length, 1)
      yield* w.task.complete({ taskId: t.id, fencingToken: leases[0]!.fencingToken, result: "ok" })
      const [done] = yield* admin.task.wait({ taskIds: [t.id] })
      assert.strictEqual(done?.status, "done")
      assert.strictEqual(done?.result, "ok")

      const stale = yield* Effect.either(w.task.complete({ taskId: t.id, fencingToken: leases[0]!.fencingToken, result: "again" }))
      assert.isTrue(Either.isLeft(stale) && stale.left._tag === "LeaseLost")
      const notMember = yield* Effect.either(w.task.enqueue({ projectId: project.id, kind: "noop", payload: {} }))
      assert.isTrue(Either.isLeft(notMember) && notMember.left._tag === "Forbidden")
      const notWorker = yield* Effect.either(admin.task.lease({ workerId, kinds: ["noop"], max: 1 }))
      assert.isTrue(Either.isLeft(notWorker) && notWorker.left._tag === "Forbidden", "only worker keys lease")
    })
  )
})

describe.each(backends)("swarm RPC authorization and events on %s", (backend) => {
  it.scopedLive("shell, python and custom cli tasks need the execute scope (the admin's keys hold the grant)", () =>
    Effect.gen(function* () {
      const hub = yield* startHub(yield* backendConfig(backend))
      const admin = yield* hub.tcpClient()
      const project = yield* admin.project.create({ name: "p", description: "" })
      const plain = yield* hub.tcpClient((yield* admin.key.create({ name: "plain", scopes: ["read", "write"] })).key)
      const refused = yield* Effect.flip(plain.task.enqueue({ projectId: project.id, kind: "shell", payload: { command: "ls" } }))
      assert.strictEqual(refused._tag, "Forbidden")
      assert.include(refused._tag === "Forbidden" ? refused.reason : "", "running commands needs a key with the execute scope")
      const python = yield* Effect.flip(
        plain.task.enqueueBatch({ tasks: [EnqueueTask.make({ projectId: project.id, kind: "python", payload: { command: "print(1)" } })] })
      )
      assert.strictEqual(python._tag, "Forbidden")
      const mapped = yield* Effect.flip(plain.task.map({ projectId: project.id, kind: "noop", items: [1], reduceKind: "shell" }))
      assert.strictEqual(mapped._tag, "Forbidden")
      const custom = yield* Effect.flip(
        plain.task.enqueue({ projectId: project.id, kind: "cli", payload: { prompt: "p", adapter: "custom", template: "rm -rf {prompt}" } })
      )
      assert.strictEqual(custom._tag, "Forbidden")
      const adapter = yield* plain.task.enqueue({ projectId: project.id, kind: "cli", payload: { prompt: "p", adapter: "codex" } })
      assert.strictEqual(adapter.status, "queued")
      const ok = yield* plain.task.enqueue({ projectId: project.id, kind: "noop", payload: {} })
      assert.strictEqual(ok.status, "queued")
      const exec = yield* hub.tcpClient((yield* admin.key.create({ name: "exec", scopes: ["read", "write", "execute"] })).key)
      const shell = yield* exec.task.enqueue({ projectId: project.id, kind: "shell", payload: { command: "ls" } })
      assert.strictEqual(shell.kind, "shell")
    })
  )

  it.scopedLive("project roles gate reads and changes; list and stats cover only visible projects", () =>
    Effect.gen(function* () {
      const hub = yield* startHub(yield* backendConfig(backend))
      const admin = yield* hub.tcpClient()
      const mine = yield* admin.project.create({ name: "mine", description: "" })
      const theirs = yield* admin.project.create({ name: "theirs", description: "" })
      const bobUser = yield* admin.user.create({ name: "bob", password: "password-bob" })
      const bob = yield* hub.wsClient((yield* admin.key.create({ name: "bob", scopes: ["read", "write"], userId: bobUser.id })).key)
      const hidden = yield* admin.task.enqueue({ projectId: theirs.id, kind: "noop", payload: {} })
      assert.strictEqual((yield* Effect.flip(bob.task.get({ taskId: hidden.id })))._tag, "NotFound")
      assert.strictEqual((yield* Effect.flip(bob.task.cancel({ taskId: hidden.id })))._tag, "NotFound")
      assert.strictEqual((yield* bob.task.list({})).length, 0)
      assert.strictEqual((yield* bob.task.stats({})).queued, 0)

      yield* admin.project.addMember({ projectId: mine.id, user: "bob", role: "viewer" })
      const visible = yield* admin.task.enqueue({ projectId: mine.id, kind: "noop", payload: {} })
      assert.strictEqual((yield* bob.task.get({ taskId: visible.id })).id, visible.id)
      assert.deepStrictEqual(
        (yield* bob.task.list({})).map((t) => t.id),
        [visible.id]
      )
      assert.strictEqual((yield* bob.task.stats({})).queued, 1)
      assert.strictEqual((yield* admin.task.stats({})).queued, 2)
      assert.strictEqual((yield* Effect.flip(bob.task.cancel({ taskId: visible.id })))._tag, "Forbidden", "viewers cannot cancel")
      assert.strictEqual((yield* Effect.flip(bob.task.enqueue({ projectId: mine.id, kind: "noop", payload: {} })))._tag, "Forbidden")

      yield* admin.project.addMember({ projectId: mine.id, user: "bob", role: "member" })
      assert.strictEqual((yield* bob.task.cancel({ taskId: visible.id })).status, "cancelled")
      assert.strictEqual((yield* bob.task.retry({ taskId: visible.id })).status, "queued")
      const filtered = yield* admin.task.list({ projectId: mine.id, status: "queued", limit: 10 })
      assert.deepStrictEqual(
        filtered.map((t) => t.id),
        [visible.id]
      )
      const workerKey = (yield* admin.key.create({ name: "worker", scopes: ["worker"] })).key
      assert.strictEqual(
        (yield* Effect.flip(bob.worker.connect({ name: "x", kinds: ["noop"], capacity: 1 }).pipe(Stream.runDrain)))._tag,
        "Forbidden"
      )
      assert.strictEqual((yield* Effect.flip(bob.task.lease({ workerId: "w" as never, kinds: ["noop"], max: 1 })))._tag, "Forbidden")
      const w = yield* hub.tcpClient(workerKey)
      assert.strictEqual((yield* Effect.flip(w.task.lease({ workerId: "w" as never, kinds: ["noop"], max: 5 })))._tag, "Forbidden", "register first")
      const workerId = yield* register(w)
      assert.strictEqual((yield* w.task.lease({ workerId, kinds: ["noop"], max: 5 })).length, 2, "an admin's worker key serves every project")
    })
  )

  it.scopedLive("transitions are published as TasksChanged events of the task's project", () =>
    Effect.gen(function* () {
      const hub = yield* startHub(yield* backendConfig(backend))
      const admin = yield* hub.tcpClient()
      const project = yield* admin.project.create({ name: "events", description: "" })
      const ws = yield* hub.wsClient()
      const events = yield* Queue.unbounded<SubscriptionItem>()
      yield* ws.events.subscribe({ projectId: project.id }).pipe(
        Stream.runForEach((e) => Queue.offer(events, e)),
        Effect.forkScoped
      )
      assert.strictEqual((yield* Queue.take(events))._tag, "Ready")
      const next = Effect.gen(function* () {
        for (;;) {
          const item = yield* Queue.take(events)
          if (item._tag === "Event" && item.event.event._tag === "TasksChanged") return item.event.event.tasks
        }
      })
      const batch = yield* admin.task.enqueueBatch({
        tasks: [1, 2, 3].map((i) => EnqueueTask.make({ projectId: project.id, kind: "noop", payload: { i } }))
      })
      const enqueued = yield* next
      assert.deepStrictEqual(
        enqueued.map((t) => t.id),
        batch.map((t) => t.id),
        "one event for the whole batch"
      )
      const w = yield* hub.tcpClient((yield* admin.key.create({ name: "w", scopes: ["worker"] })).key)
      const leases = yield* w.task.lease({ workerId: yield* register(w), kinds: ["noop"], max: 1 })
      assert.deepStrictEqual(
        (yield* next).map((t) => [t.id, t.status]),
        [[leases[0]!.task.id, "leased"]]
      )
      yield* w.task.complete({ taskId: leases[0]!.task.id, fencingToken: leases[0]!.fencingToken, result: 42 })
      const [completed] = yield* next
      assert.strictEqual(completed?.status, "done")
      assert.strictEqual(completed?.result, 42)
      yield* admin.task.cancel({ taskId: batch[1]!.id })
      assert.strictEqual((yield* next)[0]?.status, "cancelled")
    })
  )

  it.scopedLive("cancelling a leased task pushes CancelTask down its worker's connect stream", () =>
    Effect.gen(function* () {
      const hub = yield* startHub(yield* backendConfig(backend))
      const admin = yield* hub.tcpClient()
      const project = yield* admin.project.create({ name: "cancel", description: "" })
      const w = yield* hub.tcpClient((yield* admin.key.create({ name: "w", scopes: ["worker"] })).key)
      const pushes = yield* Queue.unbounded<WorkerPush>()
      yield* w.worker.connect({ name: "w1", kinds: ["noop"], capacity: 1 }).pipe(
        Stream.runForEach((p) => Queue.offer(pushes, p)),
        Effect.forkScoped
      )
      const registered = yield* Queue.take(pushes)
      const workerId = registered._tag === "Registered" ? registered.workerId : undefined!
      const t = yield* admin.task.enqueue({ projectId: project.id, kind: "noop", payload: {} })
      const [lease] = yield* w.task.lease({ workerId, kinds: ["noop"], max: 1 })
      const workers = yield* admin.task.workers()
      assert.deepStrictEqual(
        workers.map((x) => [x.id, x.connected, x.inFlight]),
        [[workerId, true, 1]]
      )
      yield* admin.task.cancel({ taskId: t.id })
      for (;;) {
        const push = yield* Queue.take(pushes)
        if (push._tag === "CancelTask") {
          assert.strictEqual(push.taskId, t.id)
          break
        }
      }
      const beat = yield* w.task.heartbeat({ taskId: t.id, fencingToken: lease!.fencingToken })
      assert.isTrue(beat.cancelled)
      const stale = yield* Effect.flip(w.task.complete({ taskId: t.id, fencingToken: lease!.fencingToken, result: null }))
      assert.strictEqual(stale._tag, "LeaseLost")
    })
  )
})
