import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { HubRpcClient } from "../../src/client/HubClient.js"
import type { ProjectId, SessionId, UserId } from "../../src/domain/Ids.js"
import { projectSchema } from "../../src/storage/Pg.js"
import { ProjectDb } from "../../src/storage/ProjectDb.js"
import { RootDb } from "../../src/storage/RootDb.js"
import { fakeOpenAI, systemText } from "../support/FakeOpenAI.js"
import { request } from "../support/Http.js"
import { tempDir, type TestHub } from "../support/Hub.js"
import { startAgentHub, watchProject } from "../support/AgentHub.js"
import { backendConfig, backends } from "../support/Pg.js"

/** What the project database still holds of a session (rows per table). */
const leftovers = (hub: TestHub, projectId: ProjectId, sessionId: SessionId) =>
  Effect.gen(function* () {
    const dbs = yield* ProjectDb
    return yield* dbs.withProject(projectId)(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) =>
          sql<{ sessions: number; messages: number; parts: number; queued: number; permissions: number }>`SELECT
          (SELECT count(*) FROM sessions WHERE id = ${sessionId}) AS sessions,
          (SELECT count(*) FROM messages WHERE session_id = ${sessionId}) AS messages,
          (SELECT count(*) FROM parts WHERE session_id = ${sessionId}) AS parts,
          (SELECT count(*) FROM queued_prompts WHERE session_id = ${sessionId}) AS queued,
          (SELECT count(*) FROM permission_requests WHERE session_id = ${sessionId}) AS permissions`
      )
    )
  }).pipe(
    Effect.map((rows) => rows[0]!),
    Effect.orDie,
    Effect.provide(hub.context)
  )

/** How many schemas the project has on PostgreSQL (1 while it exists). */
const schemas = (hub: TestHub, projectId: ProjectId) =>
  Effect.gen(function* () {
    const root = yield* RootDb
    const rows = yield* root<{ n: number }>`SELECT count(*) AS n FROM pg_namespace WHERE nspname = ${projectSchema(projectId)}`
    return Number(rows[0]?.n)
  }).pipe(Effect.orDie, Effect.provide(hub.context))

/** Users `mia` (member), `vic` (viewer) and `ada` (project admin) of the project, each with a read+write key. */
const team = (admin: HubRpcClient, projectId: ProjectId) =>
  Effect.gen(function* () {
    const keys: Record<string, string> = {}
    for (const [name, role] of [
      ["mia", "member"],
      ["vic", "viewer"],
      ["ada", "admin"]
    ] as const) {
      const user = yield* admin.user.create({ name, password: `${name}-password-long` })
      yield* admin.project.addMember({ projectId, user: name, role })
      keys[name] = (yield* admin.key.create({ name, scopes: ["read", "write"], userId: user.id as UserId })).key
    }
    return keys as Record<"mia" | "vic" | "ada", string>
  })

const tagOf = (e: { readonly _tag: string }) => e._tag

describe.each(backends)("managing sessions and projects on %s", (backend) => {
  it.scopedLive("sessions are renamed, archived, listed and deleted over RPC; viewers are refused", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake, yield* backendConfig(backend))
      const admin = yield* hub.tcpClient()
      const project = yield* admin.project.create({ name: "manage" })
      const keys = yield* team(admin, project.id)
      const mia = yield* hub.wsClient(keys.mia)
      const vic = yield* hub.tcpClient(keys.vic)
      const watch = yield* watchProject(admin, project.id)
      const at = { projectId: project.id }

      const first = yield* mia.session.create(at)
      const second = yield* mia.session.create(at)
      const renamed = yield* mia.session.rename({ ...at, sessionId: first.id, title: "  the first  " })
      assert.strictEqual(renamed.title, "the first")
      assert.strictEqual(tagOf(yield* Effect.flip(mia.session.rename({ ...at, sessionId: first.id, title: "   " }))), "InvalidInput")
      const archived = yield* mia.session.archive({ ...at, sessionId: second.id })
      assert.isTrue(archived.archived)
      assert.deepStrictEqual(
        (yield* vic.session.list(at)).map((s) => s.id),
        [first.id]
      )
      assert.deepStrictEqual(
        (yield* vic.session.list({ ...at, includeArchived: true })).map((s) => [s.id, s.archived]),
        [
          [first.id, false],
          [second.id, true]
        ]
      )
      assert.isFalse((yield* mia.session.archive({ ...at, sessionId: second.id, archived: false })).archived)
      assert.deepStrictEqual(
        (yield* vic.session.list(at)).map((s) => s.id),
        [first.id, second.id]
      )
      yield* watch.until((events) =>
        events.some((e) => e.event._tag === "SessionUpdated" && e.event.session.id === first.id && e.event.session.title === "the first")
          ? true
          : undefined
      )

      assert.strictEqual(tagOf(yield* Effect.flip(vic.session.rename({ ...at, sessionId: first.id, title: "mine" }))), "Forbidden")
      assert.strictEqual(tagOf(yield* Effect.flip(vic.session.archive({ ...at, sessionId: first.id }))), "Forbidden")
      assert.strictEqual(tagOf(yield* Effect.flip(vic.session.delete({ ...at, sessionId: first.id }))), "Forbidden")

      // A finished turn, then one that hangs with a prompt queued behind it: deleting cancels and removes it all.
      fake.script({ text: "done" }, { hang: true, text: "still going" })
      yield* mia.session.prompt({ ...at, sessionId: first.id, text: "one" })
      yield* watch.turns(first.id)
      yield* mia.session.prompt({ ...at, sessionId: first.id, text: "two" })
      yield* watch.until((events) =>
        events.some((e) => e.event._tag === "PartDelta" && e.event.sessionId === first.id && e.event.delta.includes("still")) ? true : undefined
      )
      assert.strictEqual((yield* mia.session.prompt({ ...at, sessionId: first.id, text: "three" }))._tag, "Queued")
      const before = yield* leftovers(hub, project.id, first.id)
      assert.deepStrictEqual([before.sessions, before.messages > 3, before.parts > 2, before.queued], [1, true, true, 1])

      yield* mia.session.delete({ ...at, sessionId: first.id })
      yield* Effect.promise(() => fake.waitForClosed(1))
      assert.deepStrictEqual(yield* leftovers(hub, project.id, first.id), { sessions: 0, messages: 0, parts: 0, queued: 0, permissions: 0 })
      assert.strictEqual(tagOf(yield* Effect.flip(mia.session.get({ ...at, sessionId: first.id }))), "NotFound")
      assert.strictEqual(tagOf(yield* Effect.flip(mia.session.delete({ ...at, sessionId: first.id }))), "NotFound")
      assert.deepStrictEqual(
        (yield* mia.session.list({ ...at, includeArchived: true })).map((s) => s.id),
        [second.id]
      )
      yield* watch.until((events) => (events.some((e) => e.event._tag === "SessionDeleted" && e.event.sessionId === first.id) ? true : undefined))
      // Only the one prompt that was running reached the model after the first; the queued one never ran.
      assert.strictEqual(fake.requests.length, 2)
    })
  )

  it.scopedLive("deleting a session waiting on a permission answer expires the request and removes it", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake, yield* backendConfig(backend))
      const admin = yield* hub.tcpClient()
      const project = yield* admin.project.create({ name: "asking" })
      const at = { projectId: project.id }
      const session = yield* admin.session.create(at)
      const watch = yield* watchProject(admin, project.id)
      fake.script({ text: "running it", toolCalls: [{ id: "call_sh", name: "bash", args: { command: "echo hi" } }] })
      yield* admin.session.prompt({ ...at, sessionId: session.id, text: "run something" })
      yield* watch.until((events) => (events.some((e) => e.event._tag === "PermissionAsked") ? true : undefined))
      assert.strictEqual((yield* leftovers(hub, project.id, session.id)).permissions, 1)

      yield* admin.session.delete({ ...at, sessionId: session.id })
      assert.deepStrictEqual(yield* leftovers(hub, project.id, session.id), { sessions: 0, messages: 0, parts: 0, queued: 0, permissions: 0 })
      assert.deepStrictEqual(yield* admin.permission.pending(at), [])
      yield* watch.until((events) =>
        events.some((e) => e.event._tag === "PermissionReplied" && e.event.sessionId === session.id) &&
        events.some((e) => e.event._tag === "SessionDeleted" && e.event.sessionId === session.id)
          ? true
          : undefined
      )
    })
  )

  it.scopedLive("deleting a session whose sub-agent is running cancels both and removes the child session too", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake, yield* backendConfig(backend))
      const admin = yield* hub.tcpClient()
      const project = yield* admin.project.create({ name: "family" })
      const at = { projectId: project.id }
      const parent = yield* admin.session.create(at)
      const watch = yield* watchProject(admin, project.id)
      fake.scriptFor((body) => systemText(body).includes("You are a sub-agent"), { hang: true, text: "child working" })
      fake.script({ toolCalls: [{ name: "task", args: { prompt: "work forever" } }] })
      yield* admin.session.prompt({ ...at, sessionId: parent.id, text: "delegate" })
      yield* watch.until((events) => (events.some((e) => e.event._tag === "PartDelta" && e.event.delta === "child working") ? true : undefined))
      const [child] = yield* admin.session.list({ ...at, parentId: parent.id })

      yield* admin.session.delete({ ...at, sessionId: parent.id })
      yield* Effect.promise(() => fake.waitForClosed(1))
      assert.deepStrictEqual(yield* admin.session.list({ ...at, includeArchived: true }), [])
      assert.deepStrictEqual(yield* leftovers(hub, project.id, child!.id), { sessions: 0, messages: 0, parts: 0, queued: 0, permissions: 0 })
      const deleted = yield* watch.until((events) => {
        const ids = events.flatMap((e) => (e.event._tag === "SessionDeleted" ? [e.event.sessionId] : []))
        return ids.length >= 2 ? ids : undefined
      })
      assert.sameMembers([...deleted], [parent.id, child!.id])
    })
  )

  it.scopedLive("projects are updated and deleted by owners only, after confirming the name, over RPC", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake, yield* backendConfig(backend))
      const admin = yield* hub.tcpClient()
      const project = yield* admin.project.create({ name: "doomed", description: "old" })
      const keys = yield* team(admin, project.id)
      const ada = yield* hub.tcpClient(keys.ada)
      const mia = yield* hub.tcpClient(keys.mia)
      const watch = yield* watchProject(admin, project.id)
      const at = { projectId: project.id }

      const updated = yield* admin.project.update({ ...at, name: "renamed", description: "new" })
      assert.deepStrictEqual([updated.name, updated.description, updated.role], ["renamed", "new", "owner"])
      assert.strictEqual((yield* mia.project.get(at)).name, "renamed")
      assert.strictEqual(tagOf(yield* Effect.flip(ada.project.update({ ...at, name: "mine" }))), "Forbidden")
      assert.strictEqual(tagOf(yield* Effect.flip(admin.project.update(at))), "InvalidInput")
      yield* watch.until((events) => (events.some((e) => e.event._tag === "ProjectUpdated" && e.event.project.name === "renamed") ? true : undefined))

      const dir = path.join(hub.dataDir, "projects", project.id)
      fs.writeFileSync(path.join(project.workspace, "notes.txt"), "work")
      if (backend === "sqlite") assert.isTrue(fs.existsSync(path.join(dir, "project.db")))
      else assert.strictEqual(yield* schemas(hub, project.id), 1)
      const session = yield* mia.session.create(at)
      fake.script({ hang: true, text: "working" })
      yield* mia.session.prompt({ ...at, sessionId: session.id, text: "go" })
      yield* watch.until((events) => (events.some((e) => e.event._tag === "PartDelta") ? true : undefined))

      const wrong = yield* Effect.flip(admin.project.delete({ ...at, confirm: "doomed" }))
      assert.strictEqual(wrong._tag, "ConfirmMismatch")
      assert.strictEqual(tagOf(yield* Effect.flip(ada.project.delete({ ...at, confirm: "renamed" }))), "Forbidden")
      assert.strictEqual(tagOf(yield* Effect.flip(mia.project.delete({ ...at, confirm: "renamed" }))), "Forbidden")
      assert.isTrue(fs.existsSync(dir))

      const viewer = yield* watchProject(yield* hub.tcpClient(keys.vic), project.id)
      yield* admin.project.delete({ ...at, confirm: "renamed" })
      yield* Effect.promise(() => fake.waitForClosed(1))
      yield* viewer.until((events) => (events.some((e) => e.event._tag === "ProjectDeleted" && e.event.projectId === project.id) ? true : undefined))
      assert.isFalse(fs.existsSync(dir), "the database file and the managed workspace are gone")
      const gone = yield* Effect.flip(admin.project.get(at))
      assert.deepStrictEqual([gone._tag, (gone as { entity?: string }).entity], ["NotFound", "project"])
      assert.strictEqual(tagOf(yield* Effect.flip(mia.session.list(at))), "NotFound")
      assert.strictEqual(tagOf(yield* Effect.flip(admin.project.delete({ ...at, confirm: "renamed" }))), "NotFound")
      assert.notInclude(
        (yield* admin.project.list()).map((p) => p.id),
        project.id
      )
      assert.isFalse(fs.existsSync(dir), "nothing reopened the database")
      if (backend === "pg") assert.strictEqual(yield* schemas(hub, project.id), 0, "the project's schema was dropped")
    })
  )

  it.scopedLive("deleting a project keeps a workspace directory chosen outside the data dir", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake, yield* backendConfig(backend))
      const admin = yield* hub.tcpClient()
      const mine = tempDir("kiris-own-workspace-")
      fs.writeFileSync(path.join(mine, "keep.txt"), "mine")
      const project = yield* admin.project.create({ name: "external", workspace: mine })
      yield* admin.project.delete({ projectId: project.id, confirm: "external" })
      assert.isFalse(fs.existsSync(path.join(hub.dataDir, "projects", project.id)))
      assert.strictEqual(fs.readFileSync(path.join(mine, "keep.txt"), "utf8"), "mine")
    })
  )

  it.scopedLive("the REST twins: list, rename, archive and delete sessions; update and delete the project", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake, yield* backendConfig(backend))
      const admin = yield* hub.tcpClient()
      const project = yield* admin.project.create({ name: "rest" })
      const keys = yield* team(admin, project.id)
      const base = `/api/projects/${project.id}`
      const a = yield* admin.session.create({ projectId: project.id })
      const b = yield* admin.session.create({ projectId: project.id })

      const renamed = yield* request(hub, "PATCH", `${base}/sessions/${a.id}`, { token: keys.mia, body: { title: "via rest" } })
      assert.strictEqual(renamed.status, 200, renamed.text)
      assert.strictEqual(renamed.json.title, "via rest")
      const archived = yield* request(hub, "PATCH", `${base}/sessions/${b.id}`, { token: keys.mia, body: { archived: true } })
      assert.deepStrictEqual([archived.status, archived.json.archived], [200, true])
      const listed = yield* request(hub, "GET", `${base}/sessions`, { token: keys.vic })
      assert.deepStrictEqual([listed.status, listed.json.map((s: { id: string }) => s.id)], [200, [a.id]])
      const all = yield* request(hub, "GET", `${base}/sessions?includeArchived=true`, { token: keys.vic })
      assert.deepStrictEqual(
        all.json.map((s: { id: string }) => s.id),
        [a.id, b.id]
      )
      const empty = yield* request(hub, "PATCH", `${base}/sessions/${a.id}`, { token: keys.mia, body: {} })
      assert.deepStrictEqual([empty.status, empty.json?._tag], [400, "InvalidInput"])

      const refused = yield* request(hub, "DELETE", `${base}/sessions/${a.id}`, { token: keys.vic })
      assert.deepStrictEqual([refused.status, refused.json?._tag], [403, "Forbidden"])
      const deleted = yield* request(hub, "DELETE", `${base}/sessions/${a.id}`, { token: keys.mia })
      assert.isBelow(deleted.status, 300, deleted.text)
      const missing = yield* request(hub, "DELETE", `${base}/sessions/${a.id}`, { token: keys.mia })
      assert.deepStrictEqual([missing.status, missing.json?._tag], [404, "NotFound"])

      const notOwner = yield* request(hub, "PATCH", base, { token: keys.ada, body: { name: "x" } })
      assert.deepStrictEqual([notOwner.status, notOwner.json?._tag], [403, "Forbidden"])
      const updated = yield* request(hub, "PATCH", base, { token: hub.adminKey, body: { description: "described" } })
      assert.deepStrictEqual([updated.status, updated.json.name, updated.json.description], [200, "rest", "described"])

      const wrong = yield* request(hub, "DELETE", base, { token: hub.adminKey, body: { confirm: "REST" } })
      assert.deepStrictEqual([wrong.status, wrong.json?._tag], [409, "ConfirmMismatch"])
      const byAdmin = yield* request(hub, "DELETE", base, { token: keys.ada, body: { confirm: "rest" } })
      assert.deepStrictEqual([byAdmin.status, byAdmin.json?._tag], [403, "Forbidden"])
      const gone = yield* request(hub, "DELETE", base, { token: hub.adminKey, body: { confirm: "rest" } })
      assert.isBelow(gone.status, 300, gone.text)
      assert.isFalse(fs.existsSync(path.join(hub.dataDir, "projects", project.id)))
      const after = yield* request(hub, "GET", base, { token: hub.adminKey })
      assert.deepStrictEqual([after.status, after.json?._tag], [404, "NotFound"])
    })
  )
})
