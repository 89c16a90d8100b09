import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Layer, Option, Redacted, Schema } from "effect"
import * as crypto from "node:crypto"
import { UsersRepo } from "../../src/auth/UsersRepo.js"
import { Project } from "../../src/domain/Project.js"
import { ProjectId, UserId } from "../../src/domain/Ids.js"
import { ProjectsRepo } from "../../src/project/ProjectsRepo.js"
import { projectMigrations } from "../../src/storage/migrations/project.js"
import { queueMigrations } from "../../src/storage/migrations/queue.js"
import { rootMigrations } from "../../src/storage/migrations/root.js"
import { dropProjectSchema, openPg, openProjectPg, projectSchema } from "../../src/storage/Pg.js"
import { RootDb } from "../../src/storage/RootDb.js"
import { Int } from "../../src/storage/Rows.js"

/**
 * The migrations and a few repository statements against a real PostgreSQL server, each test in a
 * schema of its own. `KIRIS_TEST_DATABASE_URL` names the database (`scripts/ci/postgres.sh` starts
 * one); without it these tests are skipped, except under CI, where its absence fails the run.
 */
const url = process.env["KIRIS_TEST_DATABASE_URL"]
const inCi = process.env["CI"] !== undefined && process.env["CI"] !== "" && process.env["CI"] !== "false"
const missing = "KIRIS_TEST_DATABASE_URL is not set: start a server with `bash scripts/ci/postgres.sh` and export its URL"

const requireUrl = Effect.suspend(() => (url === undefined || url === "" ? Effect.dieMessage(missing) : Effect.succeed(url)))

/** A client on the database itself (default search path), for creating and dropping schemas. */
const adminClient = Effect.flatMap(requireUrl, (u) => PgClient.make({ url: Redacted.make(u) }))

/** A fresh schema, dropped when the test ends, and a migrated client bound to it. */
const freshSchema = (migrations: Parameters<typeof openPg>[1]) =>
  Effect.gen(function* () {
    const u = yield* requireUrl
    const admin = yield* adminClient
    const schema = `test_${crypto.randomBytes(6).toString("hex")}`
    yield* admin.unsafe(`CREATE SCHEMA ${schema}`)
    yield* Effect.addFinalizer(() => Effect.orDie(admin.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)))
    const sql = yield* openPg(u, migrations, schema)
    return { sql, schema }
  })

const tablesIn = (sql: SqlClient.SqlClient, schema: string) =>
  sql<{ table_name: string }>`SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema} ORDER BY table_name`.pipe(
    Effect.map((rows) => rows.map((r) => r.table_name))
  )

const Count = Schema.Struct({ n: Int })

describe("migrations on PostgreSQL", () => {
  it("project ids that differ only in case or in '-' and '_' get different schemas, usable unquoted", () => {
    const ids = ["prj_aB", "prj_Ab", "prj_ab", "prj_a-b", "prj_a_b", "prj_a__0b"].map((id) => projectSchema(ProjectId.make(id)))
    assert.strictEqual(new Set(ids).size, ids.length)
    for (const schema of ids) assert.match(schema, /^project_[a-z0-9_]+$/)
    assert.strictEqual(projectSchema(ProjectId.make("prj_Ab-c")), "project_prj___ab_0c")
  })

  it("a database URL is given under CI", () => {
    if (inCi) assert.isTrue(url !== undefined && url !== "", missing)
  })

  it.scopedLive.skipIf(!url && !inCi)("root migrations run, and users and projects are written through their repositories", () =>
    Effect.gen(function* () {
      const { sql, schema } = yield* freshSchema(rootMigrations)
      assert.deepStrictEqual(yield* tablesIn(sql, schema), ["api_keys", "effect_sql_migrations", "members", "projects", "users"])

      const repos = Layer.mergeAll(UsersRepo.Default, ProjectsRepo.Default).pipe(Layer.provide(Layer.succeed(RootDb, sql)))
      const { users, projects } = yield* Effect.all({ users: UsersRepo, projects: ProjectsRepo }).pipe(Effect.provide(repos))

      // The live clock: real millisecond timestamps do not fit a 4-byte integer.
      const now = yield* Clock.currentTimeMillis
      assert.isAbove(now, 2 ** 31)
      const ann = UserId.make("usr_ann")
      const bob = UserId.make("usr_bob")
      yield* users.insertUser({ id: ann, name: "ann", passwordHash: "h", isAdmin: true, createdAt: now })
      yield* users.insertUser({ id: bob, name: "bob", passwordHash: "h", isAdmin: false, createdAt: now + 1 })
      const found = Option.getOrThrow(yield* users.byName("ann"))
      assert.strictEqual(found.user.createdAt, now, "a millisecond timestamp round-trips")
      assert.isTrue(found.user.isAdmin)
      assert.deepStrictEqual(
        (yield* users.list).map((u) => u.name),
        ["ann", "bob"]
      )

      const id = ProjectId.make("prj_Ab-c_D")
      yield* projects.insert(Project.make({ id, name: "p", description: "", workspace: "/w", createdAt: now }), ann)
      assert.deepStrictEqual(
        (yield* projects.listFor(ann)).map((p) => [p.id, p.role]),
        [[id, "owner"]]
      )
      assert.strictEqual(yield* projects.ownerCount(id), 1)

      // ON CONFLICT … DO UPDATE: a new member, then a role change that keeps the grant.
      assert.isTrue((yield* projects.upsertMember(id, bob, "member", true)).execute)
      const changed = yield* projects.upsertMember(id, bob, "viewer", undefined)
      assert.strictEqual(changed.role, "viewer")
      assert.isTrue(changed.execute)
      const [row] = yield* sql`SELECT count(*) AS n FROM members WHERE project_id = ${id}`
      assert.strictEqual(Schema.decodeUnknownSync(Count)(row).n, 2)
    }).pipe(Effect.provide(Reactivity.layer))
  )

  it.scopedLive.skipIf(!url && !inCi)("queue migrations run", () =>
    Effect.gen(function* () {
      const { sql, schema } = yield* freshSchema(queueMigrations)
      assert.deepStrictEqual(yield* tablesIn(sql, schema), ["effect_sql_migrations", "task_deps", "tasks"])
      const now = yield* Clock.currentTimeMillis
      const inserted = yield* sql`INSERT INTO tasks (id, project_id, kind, payload, status, created_at, updated_at)
        VALUES ('tsk_1', 'prj_1', 'shell', '{}', 'queued', ${now}, ${now}) RETURNING seq`
      assert.strictEqual(Schema.decodeUnknownSync(Schema.Array(Schema.Struct({ seq: Int })))(inserted)[0]?.seq, 1)
    }).pipe(Effect.provide(Reactivity.layer))
  )

  it.scopedLive.skipIf(!url && !inCi)("project migrations run in the project's own schema, which is dropped with the project", () =>
    Effect.gen(function* () {
      const u = yield* requireUrl
      const admin = yield* adminClient
      const id = ProjectId.make(`prj_${crypto.randomBytes(9).toString("base64url")}`)
      const schema = projectSchema(id)
      yield* Effect.addFinalizer(() => Effect.orDie(dropProjectSchema(admin, id)))

      const sql = yield* openProjectPg(u, admin, id, projectMigrations)
      const tables = yield* tablesIn(admin, schema)
      for (const t of ["activity", "sessions", "messages", "parts", "queued_prompts", "file_versions", "events", "effect_sql_migrations"]) {
        assert.include(tables, t)
      }
      assert.deepStrictEqual(
        yield* tablesIn(admin, "public").pipe(Effect.map((ts) => ts.filter((t) => t === "sessions"))),
        [],
        "nothing lands in public"
      )

      const now = yield* Clock.currentTimeMillis
      yield* sql`INSERT INTO sessions (id, title, agent, model, created_at, updated_at) VALUES ('ses_1', 't', 'build', 'm', ${now}, ${now})`
      yield* sql`INSERT INTO messages (id, session_id, role, status, created_at) VALUES ('msg_1', 'ses_1', 'user', 'completed', ${now})`
      const ids = yield* sql`INSERT INTO activity (at, actor, action) VALUES (${now}, 'usr_1', 'created'), (${now}, 'usr_1', 'renamed') RETURNING id`
      assert.deepStrictEqual(
        Schema.decodeUnknownSync(Schema.Array(Schema.Struct({ id: Int })))(ids).map((r) => r.id),
        [1, 2]
      )
      const [cost] = yield* sql`SELECT cost FROM sessions WHERE id = 'ses_1'`
      assert.deepStrictEqual(cost, { cost: null }, "costs are unknown until priced")

      yield* dropProjectSchema(admin, id)
      assert.deepStrictEqual(yield* tablesIn(admin, schema), [])
    }).pipe(Effect.provide(Reactivity.layer))
  )
})
