import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Queue, Scope, Stream } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Role } from "../../src/domain/Auth.js"
import type { DomainEvent } from "../../src/domain/Event.js"
import type { ProjectId, SessionId } from "../../src/domain/Ids.js"
import type { ToolOutput } from "../../src/domain/ToolOutput.js"
import type { HubRpcClient } from "../../src/client/HubClient.js"
import { Permission } from "../../src/permission/Permission.js"
import { startHub, tempDir } from "../support/Hub.js"
import { backendConfig, backends } from "../support/Pg.js"
import { makeHarness, type Harness } from "../tools/Harness.js"

type Body = DomainEvent["event"]

/** Subscribes now (waits for Ready) and returns a way to wait for the next matching event. */
const watch = (client: HubRpcClient, projectId: ProjectId) =>
  Effect.gen(function* () {
    const queue = yield* Queue.unbounded<Body>()
    const ready = yield* Deferred.make<void>()
    yield* client.events.subscribe({ projectId }).pipe(
      Stream.runForEach((item) =>
        item._tag === "Ready" ? Deferred.succeed(ready, undefined) : item._tag === "Event" ? Queue.offer(queue, item.event.event) : Effect.void
      ),
      Effect.forkScoped
    )
    yield* Deferred.await(ready)
    const next = <T extends Body["_tag"]>(tag: T): Effect.Effect<Extract<Body, { _tag: T }>> =>
      Effect.flatMap(Queue.take(queue), (e) => (e._tag === tag ? Effect.succeed(e as Extract<Body, { _tag: T }>) : next(tag)))
    return { next }
  })

type Watcher = Effect.Effect.Success<ReturnType<typeof watch>>

/** Starts a tool call in the background and waits until it asks for permission. */
const askingCall = (h: Harness, events: Watcher, tool: string, input: unknown, sessionId = "ses_1") =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(h.exec(tool, input, { sessionId: sessionId as SessionId }))
    const asked = yield* events.next("PermissionAsked")
    return { fiber, request: asked.request }
  })

const expectOk = (out: ToolOutput) => {
  if (!out.ok) assert.fail(out.error)
  return out.output
}

/** A user with `role` in the harness project and a client authenticated as them. */
const memberClient = (h: Harness, name: string, role: Role) =>
  Effect.gen(function* () {
    const user = yield* h.client.user.create({ name, password: "correct horse battery", isAdmin: false })
    yield* h.client.project.addMember({ projectId: h.project.id, user: name, role })
    const key = yield* h.client.key.create({ name: `${name}-key`, userId: user.id, scopes: ["read", "write"] })
    return yield* h.hub.tcpClient(key.key)
  })

describe.each(backends)("Permission over a real hub on %s", (backend) => {
  it.scopedLive("allow runs at once; a deny rule refuses with a clear error", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness({ hub: yield* backendConfig(backend) })
      fs.writeFileSync(path.join(h.workspace, ".env"), "TOKEN=x\n")
      fs.writeFileSync(path.join(h.workspace, "a.txt"), "a\n")
      assert.strictEqual(expectOk(yield* h.exec("read", { path: "a.txt" })), "     1\ta")
      const rule = yield* h.client.permission.setRule({ projectId: h.project.id, tool: "read", pattern: ".env", action: "deny" })
      assert.deepStrictEqual(yield* h.exec("read", { path: ".env" }), {
        ok: false,
        error: "permission denied: read on .env (project rule read .env)"
      })
      const rules = yield* h.client.permission.rules({ projectId: h.project.id })
      assert.isTrue(rules.some((r) => r.id === rule.id && r.source === "project"))
      assert.isTrue(rules.some((r) => r.id === "default:write" && r.action === "ask"))
      yield* h.client.permission.removeRule({ projectId: h.project.id, ruleId: rule.id })
      assert.isTrue((yield* h.exec("read", { path: ".env" })).ok)
      const gone = yield* Effect.flip(h.client.permission.removeRule({ projectId: h.project.id, ruleId: rule.id }))
      assert.strictEqual(gone._tag, "NotFound")
    })
  )

  it.scopedLive("ask → once: the waiting call resumes; the next call asks again", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness({ hub: yield* backendConfig(backend) })
      const events = yield* watch(yield* h.hub.wsClient(), h.project.id)
      const { fiber, request } = yield* askingCall(h, events, "write", { path: "notes/a.txt", content: "A" })
      assert.strictEqual(request.tool, "write")
      assert.strictEqual(request.subject, "notes/a.txt")
      assert.strictEqual(request.status, "pending")
      const pending = yield* h.client.permission.pending({ projectId: h.project.id, sessionId: "ses_1" as SessionId })
      assert.deepStrictEqual(
        pending.map((r) => r.id),
        [request.id]
      )
      assert.isFalse(fs.existsSync(path.join(h.workspace, "notes/a.txt")))

      const answered = yield* h.client.permission.reply({ projectId: h.project.id, requestId: request.id, reply: "once" })
      assert.strictEqual(answered.status, "allowed")
      assert.match(expectOk(yield* Fiber.join(fiber)), /^created notes\/a\.txt/)
      assert.strictEqual(fs.readFileSync(path.join(h.workspace, "notes/a.txt"), "utf8"), "A")
      const replied = yield* events.next("PermissionReplied")
      assert.deepStrictEqual([replied.requestId, replied.status, replied.reply], [request.id, "allowed", "once"])
      assert.deepStrictEqual(yield* h.client.permission.pending({ projectId: h.project.id }), [])

      const again = yield* askingCall(h, events, "write", { path: "notes/a.txt", content: "B" })
      yield* h.client.permission.reply({ projectId: h.project.id, requestId: again.request.id, reply: "once" })
      expectOk(yield* Fiber.join(again.fiber))
      const twice = yield* Effect.flip(h.client.permission.reply({ projectId: h.project.id, requestId: again.request.id, reply: "once" }))
      assert.strictEqual(twice._tag, "Conflict")
    })
  )

  it.scopedLive("ask → session: allowed for the rest of that session only", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness({ hub: yield* backendConfig(backend) })
      const events = yield* watch(yield* h.hub.wsClient(), h.project.id)
      const first = yield* askingCall(h, events, "bash", { command: "echo one" })
      yield* h.client.permission.reply({ projectId: h.project.id, requestId: first.request.id, reply: "session", pattern: "echo *" })
      assert.strictEqual(expectOk(yield* Fiber.join(first.fiber)), "one\n")
      assert.strictEqual(expectOk(yield* h.exec("bash", { command: "echo two" }, { sessionId: "ses_1" as SessionId })), "two\n")
      const rules = yield* h.client.permission.rules({ projectId: h.project.id, sessionId: "ses_1" as SessionId })
      assert.isTrue(rules.some((r) => r.source === "session" && r.sessionId === "ses_1" && r.tool === "bash" && r.pattern === "echo *"))

      const other = yield* askingCall(h, events, "bash", { command: "echo three" }, "ses_2")
      yield* h.client.permission.reply({ projectId: h.project.id, requestId: other.request.id, reply: "once" })
      assert.strictEqual(expectOk(yield* Fiber.join(other.fiber)), "three\n")
    })
  )

  it.scopedLive("ask → always: a project rule, used by every later session", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness({ hub: yield* backendConfig(backend) })
      const events = yield* watch(yield* h.hub.wsClient(), h.project.id)
      const first = yield* askingCall(h, events, "edit", { path: "x.txt", oldString: "a", newString: "b" })
      yield* h.client.permission.reply({ projectId: h.project.id, requestId: first.request.id, reply: "always" })
      const out = yield* Fiber.join(first.fiber)
      assert.deepStrictEqual(out, { ok: false, error: "file not found: x.txt" })
      fs.writeFileSync(path.join(h.workspace, "x.txt"), "a")
      expectOk(yield* h.exec("edit", { path: "x.txt", oldString: "a", newString: "b" }, { sessionId: "ses_9" as SessionId }))
      assert.strictEqual(fs.readFileSync(path.join(h.workspace, "x.txt"), "utf8"), "b")
      const rules = yield* h.client.permission.rules({ projectId: h.project.id })
      assert.isTrue(rules.some((r) => r.source === "project" && r.tool === "edit" && r.pattern === "x.txt" && r.action === "allow"))
    })
  )

  it.scopedLive("ask → reject: the tool returns the reply's message and does nothing", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness({ hub: yield* backendConfig(backend) })
      const events = yield* watch(yield* h.hub.wsClient(), h.project.id)
      const call = yield* askingCall(h, events, "write", { path: "no.txt", content: "x" })
      const answered = yield* h.client.permission.reply({
        projectId: h.project.id,
        requestId: call.request.id,
        reply: "reject",
        message: "not in this repo, use a scratch dir"
      })
      assert.strictEqual(answered.status, "rejected")
      assert.deepStrictEqual(yield* Fiber.join(call.fiber), { ok: false, error: "not in this repo, use a scratch dir" })
      assert.isFalse(fs.existsSync(path.join(h.workspace, "no.txt")))
    })
  )

  it.scopedLive("only members and above answer; only admins change rules", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness({ hub: yield* backendConfig(backend) })
      const events = yield* watch(yield* h.hub.wsClient(), h.project.id)
      const viewer = yield* memberClient(h, "vera", "viewer")
      const member = yield* memberClient(h, "max", "member")
      const call = yield* askingCall(h, events, "write", { path: "m.txt", content: "m" })
      assert.strictEqual((yield* viewer.permission.pending({ projectId: h.project.id })).length, 1)
      const refused = yield* Effect.flip(viewer.permission.reply({ projectId: h.project.id, requestId: call.request.id, reply: "once" }))
      assert.strictEqual(refused._tag, "Forbidden")
      assert.strictEqual((yield* h.client.permission.pending({ projectId: h.project.id })).length, 1)
      const answered = yield* member.permission.reply({ projectId: h.project.id, requestId: call.request.id, reply: "once" })
      assert.strictEqual(answered.repliedBy, "max")
      expectOk(yield* Fiber.join(call.fiber))
      const noRule = yield* Effect.flip(member.permission.setRule({ projectId: h.project.id, tool: "bash", pattern: "*", action: "allow" }))
      assert.strictEqual(noRule._tag, "Forbidden")
    })
  )

  it.scopedLive("an unanswered request expires to a rejection", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness({ hub: { ...(yield* backendConfig(backend)), permissionTimeoutSeconds: 0.3 } })
      const events = yield* watch(yield* h.hub.wsClient(), h.project.id)
      const out = yield* h.exec("write", { path: "late.txt", content: "x" })
      assert.deepStrictEqual(out, { ok: false, error: "no answer to the permission request within 0.3s" })
      const replied = yield* events.next("PermissionReplied")
      assert.strictEqual(replied.status, "expired")
      assert.deepStrictEqual(yield* h.client.permission.pending({ projectId: h.project.id }), [])
      assert.isFalse(fs.existsSync(path.join(h.workspace, "late.txt")))
    })
  )

  it.scopedLive("expireSession settles a session's open requests and wakes their calls", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness({ hub: yield* backendConfig(backend) })
      const events = yield* watch(yield* h.hub.wsClient(), h.project.id)
      const call = yield* askingCall(h, events, "bash", { command: "echo hi" }, "ses_x")
      const expired = yield* h.inProject(
        Effect.flatMap(Permission, (p) => p.expireSession(h.project.id, "ses_x" as SessionId, "the turn was cancelled"))
      )
      assert.strictEqual(expired, 1)
      assert.deepStrictEqual(yield* Fiber.join(call.fiber), { ok: false, error: "the turn was cancelled" })
      assert.deepStrictEqual(yield* h.client.permission.pending({ projectId: h.project.id }), [])
    })
  )

  it.scopedLive("a request whose call is stopped by a hub shutdown expires; after a restart it cannot be answered", () =>
    Effect.gen(function* () {
      const dataDir = tempDir()
      const store = yield* backendConfig(backend)
      const first = yield* Scope.make()
      const h = yield* makeHarness({ hub: { ...store, dataDir } }).pipe(Scope.extend(first))
      const events = yield* watch(yield* h.hub.wsClient().pipe(Scope.extend(first)), h.project.id).pipe(Scope.extend(first))
      const fiber = yield* Effect.forkIn(h.exec("write", { path: "after.txt", content: "x" }), first)
      const asked = yield* events.next("PermissionAsked")
      yield* Scope.close(first, Exit.void)
      assert.isTrue(Option.isSome(yield* Fiber.poll(fiber)))

      const h2 = yield* Effect.flatMap(startHub({ ...store, dataDir }), (hub) => hub.tcpClient())
      assert.deepStrictEqual(yield* h2.permission.pending({ projectId: h.project.id }), [])
      const late = yield* Effect.flip(h2.permission.reply({ projectId: h.project.id, requestId: asked.request.id, reply: "always" }))
      assert.strictEqual(late._tag, "PermissionExpired")
      const rules = yield* h2.permission.rules({ projectId: h.project.id })
      assert.isFalse(rules.some((r) => r.source === "project" && r.tool === "write"))
      assert.isFalse(fs.existsSync(path.join(h.workspace, "after.txt")))
    })
  )
})
