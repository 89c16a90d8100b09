import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { HubRpcClient } from "../../src/client/HubClient.js"
import type { Role } from "../../src/domain/Auth.js"
import type { DomainEvent } from "../../src/domain/Event.js"
import type { ProjectId, SessionId, TaskId } from "../../src/domain/Ids.js"
import type { Task } from "../../src/domain/Task.js"
import { startAgentHub, watchProject } from "../support/AgentHub.js"
import { fakeOpenAI } from "../support/FakeOpenAI.js"
import type { TestHub } from "../support/Hub.js"
import { request as rest } from "../support/Http.js"
import { backendConfig, backends } from "../support/Pg.js"

/** A user with `role` in `projectId` and a client authenticated with their read/write key. */
const userIn = (hub: TestHub, admin: HubRpcClient, name: string, projectId: ProjectId, role: Role) =>
  Effect.gen(function* () {
    const user = yield* admin.user.create({ name, password: "correct horse battery", isAdmin: false })
    yield* admin.project.addMember({ projectId, user: name, role })
    const key = yield* admin.key.create({ name: `${name}-key`, userId: user.id, scopes: ["read", "write"] })
    return yield* hub.tcpClient(key.key)
  })

const sessionStatuses = (events: ReadonlyArray<DomainEvent>, sessionId: SessionId) =>
  events.flatMap((e) => (e.event._tag === "SessionStatus" && e.event.sessionId === sessionId ? [e.event.status] : []))

const taskStatuses = (events: ReadonlyArray<DomainEvent>, taskId: TaskId) =>
  events.flatMap((e) => (e.event._tag === "TasksChanged" ? e.event.tasks.filter((t) => t.id === taskId).map((t) => t.status) : []))

const resolved = (events: ReadonlyArray<DomainEvent>, id: string) =>
  events.flatMap((e) => (e.event._tag === "InboxItemResolved" && e.event.id === id ? [e.event] : []))

describe.each(backends)("the inbox on %s", (backend) => {
  it.scopedLive(
    "a permission request and a human task wait in the inbox of those who may answer them, and answering resolves them",
    () =>
      Effect.gen(function* () {
        const fake = yield* fakeOpenAI
        const hub = yield* startAgentHub(fake, yield* backendConfig(backend))
        const admin = yield* hub.tcpClient()
        const a = yield* admin.project.create({ name: "alpha", description: "" })
        const b = yield* admin.project.create({ name: "beta", description: "" })
        const alice = yield* userIn(hub, admin, "alice", a.id, "member")
        const bob = yield* userIn(hub, admin, "bob", b.id, "member")
        const vic = yield* userIn(hub, admin, "vic", a.id, "viewer")
        const watchA = yield* watchProject(admin, a.id)
        const watchB = yield* watchProject(admin, b.id)

        // a turn in A whose `write` call waits for a permission answer (default rules ask)
        const session = yield* alice.session.create({ projectId: a.id })
        fake.script({ text: "writing", toolCalls: [{ id: "call_w", name: "write", args: { path: "note.txt", content: "hi" } }] })
        fake.script({ text: "written" })
        yield* alice.session.prompt({ projectId: a.id, sessionId: session.id, text: "write a note" })
        const added = yield* watchA.until(
          (events) => events.flatMap((e) => (e.event._tag === "InboxItemAdded" && e.event.item.kind === "permission" ? [e.event.item] : []))[0]
        )
        assert.strictEqual(added.sessionId, session.id)
        assert.strictEqual(added.projectId, a.id)
        assert.deepStrictEqual(added.options, ["approve", "reject", "session", "always"])
        yield* watchA.until((events) => (sessionStatuses(events, session.id).includes("input_required") ? true : undefined))
        assert.strictEqual((yield* alice.session.get({ projectId: a.id, sessionId: session.id })).session.status, "input_required")

        // human tasks in A and in B wait for input from the moment they are enqueued
        const taskA = yield* alice.task.enqueue({
          projectId: a.id,
          kind: "human",
          payload: { title: "Ship release 1.2?", detail: "changelog attached" }
        })
        const taskB = yield* bob.task.enqueue({ projectId: b.id, kind: "human", payload: { prompt: "Approve the budget" } })
        assert.strictEqual(taskA.status, "input_required")
        assert.strictEqual(taskB.status, "input_required")
        yield* watchA.until((events) => (events.some((e) => e.event._tag === "InboxItemAdded" && e.event.item.id === taskA.id) ? true : undefined))

        // each member sees their project's items only; the viewer of A sees none and cannot answer
        const aliceSees = yield* alice.inbox.list({})
        assert.deepStrictEqual(
          aliceSees.map((i) => [i.id, i.kind]),
          [
            [added.id, "permission"],
            [taskA.id, "human_task"]
          ]
        )
        const aliceTask = aliceSees[1]!
        assert.deepStrictEqual(
          [aliceTask.title, aliceTask.detail, aliceTask.taskId, aliceTask.options],
          ["Ship release 1.2?", "changelog attached", taskA.id, ["approve", "reject"]]
        )
        assert.deepStrictEqual(
          (yield* bob.inbox.list({})).map((i) => [i.id, i.title]),
          [[taskB.id, "Approve the budget"]]
        )
        assert.deepStrictEqual(yield* vic.inbox.list({}), [])
        assert.deepStrictEqual(yield* vic.inbox.list({ projectId: a.id }), [])
        assert.strictEqual((yield* Effect.flip(bob.inbox.list({ projectId: a.id })))._tag, "NotFound")
        assert.strictEqual((yield* Effect.flip(vic.inbox.answer({ id: added.id, answer: "approve" })))._tag, "Forbidden")
        assert.strictEqual((yield* Effect.flip(vic.inbox.answer({ id: taskA.id, answer: "approve" })))._tag, "Forbidden")
        assert.strictEqual((yield* Effect.flip(bob.inbox.answer({ id: taskA.id, answer: "approve" })))._tag, "NotFound")
        assert.strictEqual((yield* Effect.flip(bob.inbox.answer({ id: added.id, answer: "approve" })))._tag, "NotFound")
        assert.strictEqual((yield* Effect.flip(alice.inbox.answer({ id: "xyz_1", answer: "approve" })))._tag, "InvalidInput")

        // answering the permission request lets the turn go on
        const answered = yield* alice.inbox.answer({ id: added.id, answer: "approve" })
        assert.strictEqual(answered.id, added.id)
        yield* watchA.turns(session.id)
        const afterPermission = yield* watchA.until((events) =>
          sessionStatuses(events, session.id).at(-1) === "idle" && resolved(events, added.id).length > 0 ? events : undefined
        )
        assert.deepStrictEqual(
          resolved(afterPermission, added.id).map((r) => [r.kind, r.outcome]),
          [["permission", "approved"]]
        )
        assert.deepStrictEqual(sessionStatuses(afterPermission, session.id), ["running", "input_required", "running", "idle"])

        // approving A's task ends it done; rejecting B's ends it failed with the note
        const approved = yield* alice.inbox.answer({ id: taskA.id, answer: "approve", note: "go" })
        assert.strictEqual(approved.id, taskA.id)
        const doneA: Task = yield* alice.task.get({ taskId: taskA.id })
        assert.strictEqual(doneA.status, "done")
        assert.deepStrictEqual(doneA.result, { approved: true, by: "alice", note: "go" })
        const afterTask = yield* watchA.until((events) => (resolved(events, taskA.id).length > 0 ? events : undefined))
        assert.deepStrictEqual(
          resolved(afterTask, taskA.id).map((r) => [r.kind, r.outcome]),
          [["human_task", "approved"]]
        )
        assert.deepStrictEqual(taskStatuses(afterTask, taskA.id), ["input_required", "done"])

        yield* bob.inbox.answer({ id: taskB.id, answer: "reject", note: "too expensive" })
        const failedB = yield* bob.task.get({ taskId: taskB.id })
        assert.deepStrictEqual([failedB.status, failedB.error], ["failed", "rejected by bob: too expensive"])
        const afterB = yield* watchB.until((events) => (resolved(events, taskB.id).length > 0 ? events : undefined))
        assert.deepStrictEqual(
          resolved(afterB, taskB.id).map((r) => r.outcome),
          ["rejected"]
        )

        // nothing waits any more, and a second answer is a clear error
        assert.deepStrictEqual(yield* alice.inbox.list({}), [])
        assert.deepStrictEqual(yield* bob.inbox.list({}), [])
        assert.strictEqual((yield* Effect.flip(alice.inbox.answer({ id: taskA.id, answer: "approve" })))._tag, "InvalidInput")
        assert.strictEqual((yield* Effect.flip(alice.inbox.answer({ id: added.id, answer: "approve" })))._tag, "Conflict")
      }),
    60_000
  )

  it.scopedLive(
    "a human task that depends on another waits, then needs input; retry after a rejection asks again",
    () =>
      Effect.gen(function* () {
        const fake = yield* fakeOpenAI
        const hub = yield* startAgentHub(fake, yield* backendConfig(backend))
        const admin = yield* hub.tcpClient()
        const p = yield* admin.project.create({ name: "gamma", description: "" })
        const first = yield* admin.task.enqueue({ projectId: p.id, kind: "human", payload: { title: "first" } })
        const second = yield* admin.task.enqueue({ projectId: p.id, kind: "human", payload: { title: "second" }, dependsOn: [first.id] })
        assert.strictEqual(second.status, "waiting")
        assert.deepStrictEqual(
          (yield* admin.inbox.list({ projectId: p.id })).map((i) => i.title),
          ["first"]
        )
        yield* admin.inbox.answer({ id: first.id, answer: "approve" })
        assert.strictEqual((yield* admin.task.get({ taskId: second.id })).status, "input_required")
        assert.deepStrictEqual(
          (yield* admin.inbox.list({ projectId: p.id })).map((i) => i.title),
          ["second"]
        )
        yield* admin.inbox.answer({ id: second.id, answer: "reject" })
        assert.strictEqual((yield* admin.task.retry({ taskId: second.id })).status, "input_required")
        // the REST twins list and answer the same items
        const listed = yield* rest(hub, "GET", `/api/inbox?projectId=${p.id}`, { token: hub.adminKey })
        assert.strictEqual(listed.status, 200)
        assert.deepStrictEqual(
          (listed.json as ReadonlyArray<{ id: string }>).map((i) => i.id),
          [second.id]
        )
        const badScope = yield* rest(hub, "POST", `/api/inbox/${second.id}/answer`, {
          token: hub.adminKey,
          body: { answer: "approve", scope: "always" }
        })
        assert.deepStrictEqual([badScope.status, (badScope.json as { _tag: string })._tag], [400, "InvalidInput"])
        const stats = yield* admin.task.stats({ projectId: p.id })
        assert.deepStrictEqual([stats.input_required, stats.queued, stats.done], [1, 0, 1])
        assert.strictEqual((yield* admin.task.cancel({ taskId: second.id })).status, "cancelled")
        assert.deepStrictEqual(yield* admin.inbox.list({ projectId: p.id }), [])
      }),
    60_000
  )
})
