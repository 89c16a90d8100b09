import * as Reactivity from "@effect/experimental/Reactivity"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { HubRpcClient } from "../../src/client/HubClient.js"
import { projectSchema } from "../../src/storage/Pg.js"
import { startHub } from "../support/Hub.js"
import { backendConfig, backends } from "../support/Pg.js"

/**
 * Per-project storage, checked on disk: project-scoped writes (the activity log that member changes
 * write) land in that project's own `projects/<id>/project.db`, never in `root.db` and never in
 * another project's file; hub-wide rows (users, memberships) stay in `root.db`.
 */

interface ActivityRow {
  readonly actor: string
  readonly action: string
  readonly detail: string
}

const readOnly = <A>(file: string, f: (db: Database.Database) => A): A => {
  const db = new Database(file, { readonly: true, fileMustExist: true })
  try {
    return f(db)
  } finally {
    db.close()
  }
}

const tables = (db: Database.Database) =>
  (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name)

const activity = (file: string) =>
  readOnly(file, (db) => db.prepare("SELECT actor, action, detail FROM activity ORDER BY id").all() as Array<ActivityRow>)

/** Two projects with member changes (which the projects' activity logs record). */
const scenario = (admin: HubRpcClient) =>
  Effect.gen(function* () {
    const alpha = yield* admin.project.create({ name: "alpha" })
    const beta = yield* admin.project.create({ name: "beta" })
    yield* admin.user.create({ name: "ann", password: "ann-password", isAdmin: false })
    yield* admin.user.create({ name: "ben", password: "ben-password", isAdmin: false })
    yield* admin.project.addMember({ projectId: alpha.id, user: "ann", role: "member" })
    yield* admin.project.addMember({ projectId: beta.id, user: "ben", role: "viewer" })
    yield* admin.project.removeMember({ projectId: beta.id, user: "ben" })
    return { alpha, beta }
  })

const expectedActivity = {
  alpha: [
    ["admin", "project.create", { name: "alpha" }],
    ["admin", "member.add", { user: "ann", role: "member", execute: false }]
  ],
  beta: [
    ["admin", "project.create", { name: "beta" }],
    ["admin", "member.add", { user: "ben", role: "viewer", execute: false }],
    ["admin", "member.remove", { user: "ben" }]
  ]
}

const ROOT_TABLES = ["users", "api_keys", "projects", "members"]

describe("project storage isolation", () => {
  it.scopedLive("project-scoped writes land only in that project's database file", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const admin = yield* hub.tcpClient()
      const { alpha, beta } = yield* scenario(admin)

      const alphaFile = path.join(hub.dataDir, "projects", alpha.id, "project.db")
      const betaFile = path.join(hub.dataDir, "projects", beta.id, "project.db")
      const rootFile = path.join(hub.dataDir, "root.db")
      assert.isTrue(fs.existsSync(alphaFile), alphaFile)
      assert.isTrue(fs.existsSync(betaFile), betaFile)

      assert.deepStrictEqual(
        activity(alphaFile).map((r) => [r.actor, r.action, JSON.parse(r.detail)]),
        expectedActivity.alpha
      )
      assert.deepStrictEqual(
        activity(betaFile).map((r) => [r.actor, r.action, JSON.parse(r.detail)]),
        expectedActivity.beta
      )

      readOnly(rootFile, (db) => {
        const names = tables(db)
        assert.notInclude(names, "activity")
        assert.includeMembers(names, ROOT_TABLES)
        const members = db
          .prepare("SELECT project_id, u.name AS user, role FROM members m JOIN users u ON u.id = m.user_id ORDER BY project_id, u.name")
          .all() as Array<{ project_id: string; user: string; role: string }>
        assert.deepStrictEqual(
          members.filter((m) => m.user !== "admin").map((m) => [m.project_id, m.user, m.role]),
          [[alpha.id, "ann", "member"]]
        )
      })
      for (const file of [alphaFile, betaFile]) {
        readOnly(file, (db) => {
          const names = tables(db)
          for (const rootOnly of ROOT_TABLES) assert.notInclude(names, rootOnly, `${rootOnly} in ${file}`)
        })
      }
    })
  )
})

describe.skipIf(!backends.includes("pg"))("project storage isolation on PostgreSQL", () => {
  it.scopedLive("project-scoped writes land only in that project's schema; hub-wide rows stay in the default one", () =>
    Effect.gen(function* () {
      const store = yield* backendConfig("pg")
      const hub = yield* startHub(store)
      const { alpha, beta } = yield* scenario(yield* hub.tcpClient())
      const url = Option.getOrThrow(store.databaseUrl ?? Option.none())
      const sql = yield* PgClient.make({ url, maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer))
      const tablesOf = (schema: string) =>
        Effect.map(sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ${schema}`, (rows) =>
          rows.map((r) => r.name)
        )
      const activityOf = (schema: string) =>
        Effect.map(sql.unsafe<ActivityRow>(`SELECT actor, action, detail FROM ${schema}.activity ORDER BY id`), (rows) =>
          rows.map((r) => [r.actor, r.action, JSON.parse(r.detail)])
        )
      assert.deepStrictEqual(yield* activityOf(projectSchema(alpha.id)), expectedActivity.alpha)
      assert.deepStrictEqual(yield* activityOf(projectSchema(beta.id)), expectedActivity.beta)
      const root = yield* tablesOf("public")
      assert.notInclude(root, "activity")
      assert.includeMembers(root, ROOT_TABLES)
      for (const id of [alpha.id, beta.id]) {
        const names = yield* tablesOf(projectSchema(id))
        assert.include(names, "activity")
        for (const rootOnly of ROOT_TABLES) assert.notInclude(names, rootOnly, `${rootOnly} in ${projectSchema(id)}`)
      }
    }).pipe(Effect.orDie)
  )
})
