import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Queue, Scope, Stream } from "effect"
import type { HubRpcClient } from "../../src/client/HubClient.js"
import type { ProjectId, TaskId, UserId, WorkerId } from "../../src/domain/Ids.js"
import type { WorkerPush } from "../../src/domain/rpc/WorkerRpcs.js"
import { EnqueueTask, type Lease } from "../../src/domain/Task.js"
import { startHub, tempDir, type TestHub } from "../support/Hub.js"
import { runKiris } from "../support/KirisProcess.js"
import { until } from "./swarm-support.js"

const notHeld = "the lease on this task is not held by this worker"

/** Registers a worker on `client`'s connection for the caller's scope (optionally reclaiming `workerId`); its id. */
const register = (client: HubRpcClient, workerId?: WorkerId) =>
  Effect.gen(function* () {
    const pushes = yield* Queue.unbounded<WorkerPush>()
    yield* client.worker.connect({ name: "w", kinds: ["chat", "noop"], capacity: 8, ...(workerId === undefined ? {} : { workerId }) }).pipe(
      Stream.runForEach((p) => Queue.offer(pushes, p)),
      Effect.forkScoped
    )
    const first = yield* Queue.take(pushes)
    assert.strictEqual(first._tag, "Registered")
    return (first as Extract<WorkerPush, { _tag: "Registered" }>).workerId
  })

/** A worker client with a fresh worker key of the admin (`userId` to own it, `projects` to limit it). */
const workerClient = (hub: TestHub, admin: HubRpcClient, options: { readonly userId?: UserId; readonly projects?: ReadonlyArray<ProjectId> } = {}) =>
  Effect.gen(function* () {
    const created = yield* admin.key.create({
      name: "worker",
      scopes: ["worker"],
      ...(options.userId === undefined ? {} : { userId: options.userId }),
      ...(options.projects === undefined ? {} : { projects: options.projects })
    })
    return { key: created.key, info: created.info, client: yield* hub.tcpClient(created.key) }
  })

const leaseAll = (client: HubRpcClient, workerId: WorkerId) => client.task.lease({ workerId, kinds: ["chat", "noop"], max: 100 })

const ids = (leases: ReadonlyArray<Lease>) => leases.map((l) => l.task.id).sort()

/** A hub with two projects, one chat task each (their prompts are secrets). */
const setup = Effect.gen(function* () {
  const hub = yield* startHub()
  const admin = yield* hub.tcpClient()
  const p1 = (yield* admin.project.create({ name: "one" })).id
  const p2 = (yield* admin.project.create({ name: "two" })).id
  const t1 = yield* admin.task.enqueue({ projectId: p1, kind: "chat", payload: { prompt: "secret of one" } })
  const t2 = yield* admin.task.enqueue({ projectId: p2, kind: "chat", payload: { prompt: "secret of two" } })
  return { hub, admin, p1, p2, t1: t1.id as TaskId, t2: t2.id as TaskId }
})

describe("worker keys serve only their projects", () => {
  it.scopedLive("a user's worker key leases only where its user is a member or above; a non-member's leases nothing", () =>
    Effect.gen(function* () {
      const { admin, hub, p1, p2, t2 } = yield* setup
      const bob = yield* admin.user.create({ name: "bob", password: "password-bob" })
      const carol = yield* admin.user.create({ name: "carol", password: "password-carol" })
      yield* admin.project.addMember({ projectId: p1, user: "bob", role: "viewer" })
      yield* admin.project.addMember({ projectId: p2, user: "bob", role: "member" })

      // any user may create a worker key for themselves
      const asCarol = yield* hub.tcpClient((yield* admin.key.create({ name: "carol", scopes: ["admin"], userId: carol.id })).key)
      const carolWorker = yield* hub.tcpClient((yield* asCarol.key.create({ name: "carol worker", scopes: ["worker"] })).key)
      const carolLeases = yield* leaseAll(carolWorker, yield* register(carolWorker))
      assert.deepStrictEqual(carolLeases, [], "a non-member leases nothing, so sees no prompt")

      const bobWorker = (yield* workerClient(hub, admin, { userId: bob.id })).client
      const bobLeases = yield* leaseAll(bobWorker, yield* register(bobWorker))
      assert.deepStrictEqual(ids(bobLeases), [t2], "a viewer's project is not served")
      assert.deepStrictEqual(bobLeases[0]!.task.payload, { prompt: "secret of two" })
    })
  )

  it.scopedLive("a key naming a project serves only it; an admin's worker key serves every project", () =>
    Effect.gen(function* () {
      const { admin, hub, p1, t1, t2 } = yield* setup
      const limited = yield* workerClient(hub, admin, { projects: [p1] })
      assert.deepStrictEqual(limited.info.projects, [p1])
      const me = yield* limited.client.user.whoami()
      assert.deepStrictEqual([me.kind, me.projects], ["worker", [p1]])
      assert.deepStrictEqual(ids(yield* leaseAll(limited.client, yield* register(limited.client))), [t1])

      const t3 = yield* admin.task.enqueue({ projectId: p1, kind: "noop", payload: {} })
      const everything = (yield* workerClient(hub, admin)).client
      assert.deepStrictEqual(ids(yield* leaseAll(everything, yield* register(everything))), [t2, t3.id as TaskId].sort())
    })
  )

  it.scopedLive("a key cannot name a project its user is not a member of; a worker key carries only the worker scope", () =>
    Effect.gen(function* () {
      const { admin, hub, p1, p2 } = yield* setup
      const bob = yield* admin.user.create({ name: "bob", password: "password-bob" })
      yield* admin.project.addMember({ projectId: p2, user: "bob", role: "member" })
      const notMember = yield* Effect.flip(admin.key.create({ name: "w", scopes: ["worker"], userId: bob.id, projects: [p1] }))
      assert.strictEqual(notMember._tag, "NotFound")
      const unknown = yield* Effect.flip(admin.key.create({ name: "w", scopes: ["worker"], projects: ["prj_nope" as ProjectId] }))
      assert.strictEqual(unknown._tag, "NotFound")
      const named = yield* admin.key.create({ name: "w", scopes: ["worker"], userId: bob.id, projects: [p2] })
      assert.deepStrictEqual(named.info.projects, [p2])
      assert.deepStrictEqual((yield* admin.key.list()).find((k) => k.id === named.info.id)?.projects, [p2])

      for (const scopes of [
        ["worker", "read"],
        ["worker", "admin"],
        ["execute", "worker"]
      ] as const) {
        const refused = yield* Effect.flip(admin.key.create({ name: "w", scopes }))
        assert.strictEqual(refused._tag, "InvalidInput")
        assert.include(refused._tag === "InvalidInput" ? refused.reason : "", "a worker key carries only the worker scope")
      }

      // a key limited to some projects cannot create a key reaching further
      const asBob = yield* hub.tcpClient((yield* admin.key.create({ name: "bob", scopes: ["admin"], userId: bob.id, projects: [p2] })).key)
      const inherited = yield* asBob.key.create({ name: "bob worker", scopes: ["worker"] })
      assert.deepStrictEqual(inherited.info.projects, [p2], "a limited key's keys are limited alike")
    })
  )

  it.scopedLive(
    "kiris key create --project limits a key to the projects given",
    () =>
      Effect.gen(function* () {
        const { admin, hub, p1, p2, t2 } = yield* setup
        const run = yield* runKiris(
          ["key", "create", "limited", "--scope", "worker", "--project", p2, "--json", "--hub", `127.0.0.1:${hub.tcpPort}`, "--token", hub.adminKey],
          { cwd: tempDir("kiris-cwd-") }
        )
        assert.strictEqual(run.code, 0, run.stderr)
        const created = JSON.parse(run.stdout) as { key: string; info: { scopes: Array<string>; projects: Array<string> } }
        assert.deepStrictEqual([created.info.scopes, created.info.projects], [["worker"], [p2]])
        const w = yield* hub.tcpClient(created.key)
        assert.deepStrictEqual(ids(yield* leaseAll(w, yield* register(w))), [t2])
        assert.strictEqual((yield* admin.task.list({ projectId: p1, status: "queued" })).length, 1)
      }),
    60_000
  )
})

describe("a lease is bound to the worker connection that took it", () => {
  it.scopedLive("calls with the right token from another connection are refused alike and change nothing", () =>
    Effect.gen(function* () {
      const { admin, hub, t1 } = yield* setup
      const holder = yield* workerClient(hub, admin)
      const holderId = yield* register(holder.client)
      const [lease] = (yield* leaseAll(holder.client, holderId)).filter((l) => l.task.id === t1)
      const token = lease!.fencingToken

      const sameKey = yield* hub.tcpClient(holder.key)
      const otherKey = (yield* workerClient(hub, admin)).client
      const bob = yield* admin.user.create({ name: "bob", password: "password-bob" })
      const otherUser = (yield* workerClient(hub, admin, { userId: bob.id })).client
      yield* register(otherKey)
      yield* register(otherUser)

      for (const intruder of [sameKey, otherKey, otherUser]) {
        for (const workerId of [undefined, holderId]) {
          const as = workerId === undefined ? {} : { workerId }
          const calls = [
            intruder.task.complete({ ...as, taskId: t1, fencingToken: token, result: "forged" }),
            intruder.task.heartbeat({ ...as, taskId: t1, fencingToken: token }),
            intruder.task.fail({ ...as, taskId: t1, fencingToken: token, message: "forged", retryable: false }),
            intruder.task.progress({ ...as, taskId: t1, fencingToken: token, parts: ["forged"] })
          ]
          for (const call of calls) {
            const refused = yield* Effect.flip(call)
            assert.strictEqual(refused._tag, "LeaseLost")
            assert.strictEqual(refused._tag === "LeaseLost" ? refused.reason : "", notHeld)
          }
          const batch = yield* intruder.task.completeBatch({ ...as, items: [{ taskId: t1, fencingToken: token, result: "forged" }] })
          assert.deepStrictEqual(batch, [{ taskId: t1, ok: false, error: `LeaseLost: ${notHeld}` }])
        }
      }
      const unchanged = yield* admin.task.get({ taskId: t1 })
      assert.deepStrictEqual([unchanged.status, unchanged.workerId, unchanged.result, unchanged.attempts], ["leased", holderId, null, 1])

      yield* holder.client.task.complete({ taskId: t1, fencingToken: token, result: "real" })
      assert.strictEqual((yield* admin.task.get({ taskId: t1 })).result, "real")
    })
  )

  it.scopedLive("fencing tokens are random, and a refusal never tells one: wrong token, other holder and unknown task read the same", () =>
    Effect.gen(function* () {
      const { admin, hub, p1, t1, t2 } = yield* setup
      const w = (yield* workerClient(hub, admin)).client
      const workerId = yield* register(w)
      const [first] = yield* w.task.lease({ workerId, kinds: ["chat"], max: 1 })
      const [second] = yield* w.task.lease({ workerId, kinds: ["chat"], max: 1 })
      const more = yield* admin.task.enqueueBatch({
        tasks: [1, 2, 3].map((i) => EnqueueTask.make({ projectId: p1, kind: "noop", payload: { i } }))
      })
      const batch = yield* w.task.lease({ workerId, kinds: ["noop"], max: 3 })
      assert.deepStrictEqual(ids([first!, second!]), [t1, t2].sort())
      assert.strictEqual(batch.length, more.length)
      const tokens = [first!, second!, ...batch].map((l) => l.fencingToken)
      for (const t of tokens) {
        assert.isTrue(Number.isSafeInteger(t) && t > 1, `token ${t}`)
      }
      for (let i = 1; i < tokens.length; i++) assert.notStrictEqual(Math.abs(tokens[i]! - tokens[i - 1]!), 1, tokens.join(","))
      assert.strictEqual(new Set(tokens).size, tokens.length)

      const other = (yield* workerClient(hub, admin)).client
      yield* register(other)
      const wrongToken = yield* Effect.flip(w.task.complete({ taskId: first!.task.id, fencingToken: first!.fencingToken + 1, result: null }))
      const otherHolder = yield* Effect.flip(other.task.complete({ taskId: first!.task.id, fencingToken: first!.fencingToken, result: null }))
      const unknownTask = yield* Effect.flip(w.task.complete({ taskId: "tsk_unknown" as TaskId, fencingToken: first!.fencingToken, result: null }))
      const reasons = [wrongToken, otherHolder, unknownTask].map((e) => [e._tag, e._tag === "LeaseLost" ? e.reason : ""])
      assert.deepStrictEqual(reasons, [
        ["LeaseLost", notHeld],
        ["LeaseLost", notHeld],
        ["LeaseLost", notHeld]
      ])
      const everything = JSON.stringify([wrongToken, otherHolder, unknownTask])
      for (const t of tokens) assert.notInclude(everything, String(t))
    })
  )

  it.scopedLive("a reconnect with the same key reclaims the worker id and finishes its task; another key cannot", () =>
    Effect.gen(function* () {
      const { admin, hub, t1 } = yield* setup
      const { key } = yield* workerClient(hub, admin)
      const first = yield* Scope.make()
      const before = yield* hub.tcpClient(key).pipe(Scope.extend(first))
      const workerId = yield* register(before).pipe(Scope.extend(first))
      const [lease] = (yield* leaseAll(before, workerId)).filter((l) => l.task.id === t1)
      yield* Scope.close(first, Exit.void)
      yield* until(
        "the hub to see the worker go",
        Effect.map(admin.task.workers(), (ws) => (ws.some((w) => w.id === workerId && !w.connected) ? true : undefined))
      )

      const stranger = (yield* workerClient(hub, admin)).client
      const stolen = yield* Effect.flip(stranger.worker.connect({ workerId, name: "thief", kinds: ["chat"], capacity: 1 }).pipe(Stream.runDrain))
      assert.strictEqual(stolen._tag, "Forbidden")
      const sneaky = yield* Effect.flip(stranger.task.lease({ workerId, kinds: ["chat"], max: 1 }))
      assert.strictEqual(sneaky._tag, "Forbidden")
      const forged = yield* Effect.flip(stranger.task.complete({ workerId, taskId: t1, fencingToken: lease!.fencingToken, result: "forged" }))
      assert.strictEqual(forged._tag, "LeaseLost")

      const after = yield* hub.tcpClient(key)
      assert.strictEqual(yield* register(after, workerId), workerId)
      yield* after.task.complete({ taskId: t1, fencingToken: lease!.fencingToken, result: "after reconnect" })
      const done = yield* admin.task.get({ taskId: t1 })
      assert.deepStrictEqual([done.status, done.result], ["done", "after reconnect"])
    })
  )
})
