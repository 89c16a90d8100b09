import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeHubClient } from "../../src/client/HubClient.js"
import type { ProjectId } from "../../src/domain/Ids.js"
import { EnqueueTask } from "../../src/domain/Task.js"
import { request as rest } from "../support/Http.js"
import { startHub, type TestHub } from "../support/Hub.js"

/**
 * Running commands on workers is a grant, not a default: a project member's login token and keys
 * alike are refused shell tasks until a server admin (or a project admin holding the grant) gives it;
 * the grant shows in the member list and can be withdrawn.
 */

const tcp = (hub: TestHub, token: string) => makeHubClient({ transport: "tcp", host: "127.0.0.1", port: hub.tcpPort }, token)
const shell = (projectId: ProjectId) => EnqueueTask.make({ projectId, kind: "shell", payload: { command: "echo hi" } })

const loginToken = (hub: TestHub, name: string) =>
  Effect.map(rest(hub, "POST", "/api/auth/login", { body: { name, password: `${name}-password` } }), (r) => (r.json as { token: string }).token)

describe("the execute grant", () => {
  it.scopedLive("a member's login token cannot enqueue shell work until a server admin grants execute, and loses it when withdrawn", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const admin = yield* tcp(hub, hub.adminKey)
      yield* admin.user.create({ name: "dana", password: "dana-password", isAdmin: false })
      const project = yield* admin.project.create({ name: "ops" })
      const added = yield* admin.project.addMember({ projectId: project.id, user: "dana", role: "member" })
      assert.isFalse(added.execute)
      const dana = yield* tcp(hub, yield* loginToken(hub, "dana"))

      const refused = yield* Effect.flip(dana.task.enqueue(shell(project.id)))
      assert.strictEqual(refused._tag, "Forbidden")
      assert.include(refused._tag === "Forbidden" ? refused.reason : "", "execute grant")
      const customCli = yield* Effect.flip(
        dana.task.enqueue({ projectId: project.id, kind: "cli", payload: { prompt: "x", adapter: "custom", template: "sh -c {prompt}" } })
      )
      assert.strictEqual(customCli._tag, "Forbidden")
      yield* dana.task.enqueue({ projectId: project.id, kind: "chat", payload: { prompt: "a chat task needs no grant" } })

      const granted = yield* admin.project.addMember({ projectId: project.id, user: "dana", role: "member", execute: true })
      assert.isTrue(granted.execute)
      const members = yield* dana.project.members({ projectId: project.id })
      assert.deepStrictEqual(
        members.map((m) => [m.userName, m.execute]),
        [
          ["admin", true],
          ["dana", true]
        ]
      )
      const task = yield* dana.task.enqueue(shell(project.id))
      assert.strictEqual(task.kind, "shell")

      // Changing the role without `execute` keeps the grant; `execute: false` withdraws it.
      assert.isTrue((yield* admin.project.addMember({ projectId: project.id, user: "dana", role: "admin" })).execute)
      yield* admin.project.addMember({ projectId: project.id, user: "dana", role: "member", execute: false })
      assert.strictEqual((yield* Effect.flip(dana.task.enqueue(shell(project.id))))._tag, "Forbidden")
    })
  )

  it.scopedLive("a key needs the execute scope as well as its user's grant; the grant is per project", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const admin = yield* tcp(hub, hub.adminKey)
      const erin = yield* admin.user.create({ name: "erin", password: "erin-password", isAdmin: false })
      const granted = yield* admin.project.create({ name: "granted" })
      const other = yield* admin.project.create({ name: "other" })
      yield* admin.project.addMember({ projectId: granted.id, user: "erin", role: "member", execute: true })
      yield* admin.project.addMember({ projectId: other.id, user: "erin", role: "member" })
      const plain = yield* tcp(hub, (yield* admin.key.create({ name: "plain", scopes: ["read", "write"], userId: erin.id })).key)
      const executing = yield* tcp(hub, (yield* admin.key.create({ name: "exec", scopes: ["read", "write", "execute"], userId: erin.id })).key)

      const noScope = yield* Effect.flip(plain.task.enqueue(shell(granted.id)))
      assert.strictEqual(noScope._tag, "Forbidden")
      assert.include(noScope._tag === "Forbidden" ? noScope.reason : "", "execute scope")
      yield* executing.task.enqueue(shell(granted.id))
      assert.strictEqual((yield* Effect.flip(executing.task.enqueue(shell(other.id))))._tag, "Forbidden")
      const batch = yield* Effect.flip(executing.task.enqueueBatch({ tasks: [shell(granted.id), shell(other.id)] }))
      assert.strictEqual(batch._tag, "Forbidden")
      const fanOut = yield* Effect.flip(executing.task.map({ projectId: other.id, kind: "python", items: [{ command: "print(1)" }] }))
      assert.strictEqual(fanOut._tag, "Forbidden")
    })
  )

  it.scopedLive("only server admins, or project admins holding the grant, give it", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const admin = yield* tcp(hub, hub.adminKey)
      yield* admin.user.create({ name: "olga", password: "olga-password", isAdmin: false })
      yield* admin.user.create({ name: "pete", password: "pete-password", isAdmin: false })
      // A non-admin creates a project and owns it, but does not hold execute there.
      const olga = yield* tcp(hub, yield* loginToken(hub, "olga"))
      const own = yield* olga.project.create({ name: "olga's" })
      const selfGrant = yield* Effect.flip(olga.project.addMember({ projectId: own.id, user: "olga", role: "owner", execute: true }))
      assert.strictEqual(selfGrant._tag, "Forbidden")
      assert.strictEqual((yield* Effect.flip(olga.task.enqueue(shell(own.id))))._tag, "Forbidden")

      // Once a server admin grants it to her, she may pass it on in that project.
      yield* admin.project.addMember({ projectId: own.id, user: "olga", role: "owner", execute: true })
      const pete = yield* olga.project.addMember({ projectId: own.id, user: "pete", role: "member", execute: true })
      assert.isTrue(pete.execute)
    })
  )
})
