import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope, Stream } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { type HubRpcClient, makeHubClient } from "../../src/client/HubClient.js"
import type { ProjectId } from "../../src/domain/Ids.js"
import { startHub, type TestHub } from "../support/Hub.js"
import { subscribeQueued, takeWithin } from "../support/Subscribe.js"

/**
 * The client protocol end to end against a real hub, once per transport (the same suite runs over
 * TCP NDJSON and over WebSocket). Events cross transports: a subscriber on one sees changes made
 * through the other.
 */

type Connect = (hub: TestHub, token: string | undefined) => Effect.Effect<HubRpcClient, never, Scope.Scope>

const overTcp: Connect = (hub, token) => makeHubClient({ transport: "tcp", host: "127.0.0.1", port: hub.tcpPort }, token)
const overWs: Connect = (hub, token) => makeHubClient({ transport: "ws", url: hub.wsUrl }, token)

/** Creates a user and an API key for them (as the admin), and returns a client acting as that user. */
const actAs = (hub: TestHub, connect: Connect, admin: HubRpcClient, name: string) =>
  Effect.gen(function* () {
    const user = yield* admin.user.create({ name, password: `${name}-password`, isAdmin: false })
    const created = yield* admin.key.create({ name: `${name} key`, scopes: ["read", "write"], userId: user.id })
    return { user, key: created.key, client: yield* connect(hub, created.key) }
  })

const e2eSuite = (name: string, connect: Connect, other: { readonly name: string; readonly connect: Connect }) =>
  describe(`client RPC over ${name}`, () => {
    it.scopedLive("a call without a token or with a bad one fails with Unauthorized", () =>
      Effect.gen(function* () {
        const hub = yield* startHub()
        const anonymous = yield* connect(hub, undefined)
        const missing = yield* Effect.flip(anonymous.project.list())
        assert.strictEqual(missing._tag, "Unauthorized")
        assert.strictEqual(missing._tag === "Unauthorized" && missing.reason, "missing bearer token")

        const bad = yield* connect(hub, "bad")
        const rejected = yield* Effect.flip(bad.user.whoami())
        assert.strictEqual(rejected._tag, "Unauthorized")

        const unknownKey = yield* connect(hub, "kiris_not-a-real-key")
        const unknown = yield* Effect.flip(unknownKey.project.create({ name: "x" }))
        assert.strictEqual(unknown._tag, "Unauthorized")
        assert.strictEqual(unknown._tag === "Unauthorized" && unknown.reason, "unknown API key")

        const streamError = yield* Effect.flip(Stream.runHead(bad.events.subscribe({ projectId: "prj_x" as ProjectId })))
        assert.strictEqual(streamError._tag, "Unauthorized")

        const admin = yield* connect(hub, hub.adminKey)
        assert.deepStrictEqual(yield* admin.project.list(), [])
      })
    )

    it.scopedLive("the admin key creates a project and a user, adds the member, lists projects", () =>
      Effect.gen(function* () {
        const hub = yield* startHub()
        const admin = yield* connect(hub, hub.adminKey)
        const me = yield* admin.user.whoami()
        assert.strictEqual(me.name, "admin")
        assert.isTrue(me.isAdmin)

        const project = yield* admin.project.create({ name: "apollo", description: "moon shot" })
        assert.match(project.id, /^prj_/)
        assert.strictEqual(project.role, "owner")
        assert.strictEqual(project.workspace, path.join(hub.dataDir, "projects", project.id, "files"))
        assert.isTrue(fs.statSync(project.workspace).isDirectory())

        const alice = yield* admin.user.create({ name: "alice", password: "alice-password", isAdmin: false })
        const member = yield* admin.project.addMember({ projectId: project.id, user: "alice", role: "member" })
        assert.deepStrictEqual([member.userId, member.userName, member.role], [alice.id, "alice", "member"])

        const members = yield* admin.project.members({ projectId: project.id })
        assert.deepStrictEqual(
          members.map((m) => [m.userName, m.role]),
          [
            ["admin", "owner"],
            ["alice", "member"]
          ]
        )
        const listed = yield* admin.project.list()
        assert.deepStrictEqual(
          listed.map((p) => [p.id, p.name, p.description, p.role]),
          [[project.id, "apollo", "moon shot", "owner"]]
        )
        assert.deepStrictEqual((yield* admin.user.list()).map((u) => u.name).sort(), ["admin", "alice"])

        // The same data through the other transport.
        const viaOther = yield* other.connect(hub, hub.adminKey)
        assert.deepStrictEqual((yield* viaOther.project.get({ projectId: project.id })).name, "apollo")
      })
    )

    it.scopedLive("a viewer cannot mutate, and a member of one project cannot read another", () =>
      Effect.gen(function* () {
        const hub = yield* startHub()
        const admin = yield* connect(hub, hub.adminKey)
        const a = yield* admin.project.create({ name: "a" })
        const b = yield* admin.project.create({ name: "b" })
        const viewer = yield* actAs(hub, connect, admin, "victor")
        const member = yield* actAs(hub, connect, admin, "maria")
        yield* admin.project.addMember({ projectId: a.id, user: "victor", role: "viewer" })
        yield* admin.project.addMember({ projectId: a.id, user: "maria", role: "member" })

        const seen = yield* viewer.client.project.get({ projectId: a.id })
        assert.strictEqual(seen.role, "viewer")
        assert.strictEqual((yield* viewer.client.project.members({ projectId: a.id })).length, 3)
        const forbidden = yield* Effect.flip(viewer.client.project.addMember({ projectId: a.id, user: "maria", role: "admin" }))
        assert.strictEqual(forbidden._tag, "Forbidden")
        assert.include(forbidden._tag === "Forbidden" ? forbidden.reason : "", "needs role admin")
        const removeForbidden = yield* Effect.flip(viewer.client.project.removeMember({ projectId: a.id, user: "maria" }))
        assert.strictEqual(removeForbidden._tag, "Forbidden")
        assert.strictEqual((yield* admin.project.members({ projectId: a.id })).find((m) => m.userName === "maria")?.role, "member")

        assert.deepStrictEqual(
          (yield* member.client.project.list()).map((p) => p.id),
          [a.id]
        )
        const hidden = yield* Effect.flip(member.client.project.get({ projectId: b.id }))
        assert.strictEqual(hidden._tag, "NotFound")
        assert.deepStrictEqual(hidden._tag === "NotFound" && [hidden.entity, hidden.id], ["project", b.id])
        const hiddenMembers = yield* Effect.flip(member.client.project.members({ projectId: b.id }))
        assert.strictEqual(hiddenMembers._tag, "NotFound")
        const hiddenAdd = yield* Effect.flip(member.client.project.addMember({ projectId: b.id, user: "maria", role: "owner" }))
        assert.strictEqual(hiddenAdd._tag, "NotFound")
        const hiddenEvents = yield* Effect.flip(Stream.runHead(member.client.events.subscribe({ projectId: b.id })))
        assert.strictEqual(hiddenEvents._tag, "NotFound")
        assert.deepStrictEqual(
          (yield* admin.project.members({ projectId: b.id })).map((m) => m.userName),
          ["admin"]
        )
      })
    )

    it.scopedLive(`events.subscribe sees a change made over ${other.name}`, () =>
      Effect.gen(function* () {
        const hub = yield* startHub()
        const admin = yield* connect(hub, hub.adminKey)
        const project = yield* admin.project.create({ name: "watched" })
        const elsewhere = yield* admin.project.create({ name: "elsewhere" })
        const viewer = yield* actAs(hub, connect, admin, "watcher")
        yield* admin.project.addMember({ projectId: project.id, user: "watcher", role: "viewer" })

        const items = yield* subscribeQueued(viewer.client, project.id)
        const writer = yield* other.connect(hub, hub.adminKey)
        yield* writer.user.create({ name: "newcomer", password: "newcomer-password", isAdmin: false })
        yield* writer.project.addMember({ projectId: elsewhere.id, user: "newcomer", role: "member" })
        yield* writer.project.addMember({ projectId: project.id, user: "newcomer", role: "member" })
        yield* writer.project.removeMember({ projectId: project.id, user: "newcomer" })

        const added = yield* takeWithin(items, "MemberAdded")
        assert.strictEqual(added._tag, "Event")
        if (added._tag !== "Event") return
        assert.strictEqual(added.event.projectId, project.id)
        assert.strictEqual(added.event.event._tag, "MemberAdded")
        assert.strictEqual(added.event.event._tag === "MemberAdded" && added.event.event.member.userName, "newcomer")
        const removed = yield* takeWithin(items, "MemberRemoved")
        assert.strictEqual(removed._tag === "Event" && removed.event.event._tag, "MemberRemoved")
        assert.isTrue(removed._tag === "Event" && removed.event.seq > added.event.seq)
      })
    )

    it.scopedLive("everything is still there after the hub restarts on the same data dir", () =>
      Effect.gen(function* () {
        const first = yield* Scope.make()
        yield* Effect.addFinalizer(() => Scope.close(first, Exit.void))
        const hub1 = yield* Scope.extend(startHub(), first)
        const admin1 = yield* Scope.extend(connect(hub1, hub1.adminKey), first)
        const project = yield* admin1.project.create({ name: "durable", description: "kept" })
        const carol = yield* Scope.extend(actAs(hub1, connect, admin1, "carol"), first)
        yield* admin1.project.addMember({ projectId: project.id, user: "carol", role: "admin" })
        const doomed = yield* admin1.key.create({ name: "doomed", scopes: ["read"] })
        yield* admin1.key.revoke({ id: doomed.info.id })
        yield* Scope.close(first, Exit.void)

        const hub2 = yield* startHub({ dataDir: hub1.dataDir })
        assert.strictEqual(hub2.adminKey, hub1.adminKey)
        const admin2 = yield* connect(hub2, hub2.adminKey)
        assert.deepStrictEqual(
          (yield* admin2.project.list()).map((p) => [p.id, p.name, p.description]),
          [[project.id, "durable", "kept"]]
        )
        assert.deepStrictEqual(
          (yield* admin2.project.members({ projectId: project.id })).map((m) => [m.userName, m.role]),
          [
            ["admin", "owner"],
            ["carol", "admin"]
          ]
        )
        assert.deepStrictEqual((yield* admin2.user.list()).map((u) => u.name).sort(), ["admin", "carol"])
        const keys = yield* admin2.key.list()
        assert.deepStrictEqual(keys.map((k) => k.name).sort(), ["admin (bootstrap)", "carol key", "doomed"])
        assert.isNotNull(keys.find((k) => k.name === "doomed")?.revokedAt)

        const carol2 = yield* connect(hub2, carol.key)
        const whoami = yield* carol2.user.whoami()
        assert.deepStrictEqual([whoami.name, whoami.userId], ["carol", carol.user.id])
        assert.strictEqual((yield* carol2.project.get({ projectId: project.id })).role, "admin")
        const revoked = yield* Effect.flip((yield* connect(hub2, doomed.key)).user.whoami())
        assert.strictEqual(revoked._tag, "Unauthorized")
      })
    )
  })

e2eSuite("TCP NDJSON", overTcp, { name: "WebSocket", connect: overWs })
e2eSuite("WebSocket", overWs, { name: "TCP NDJSON", connect: overTcp })
