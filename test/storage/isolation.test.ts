import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { startHub } from "../support/Hub.js"

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

describe("project storage isolation", () => {
  it.scopedLive("project-scoped writes land only in that project's database file", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const admin = yield* hub.tcpClient()
      const alpha = yield* admin.project.create({ name: "alpha" })
      const beta = yield* admin.project.create({ name: "beta" })
      yield* admin.user.create({ name: "ann", password: "ann-password", isAdmin: false })
      yield* admin.user.create({ name: "ben", password: "ben-password", isAdmin: false })
      yield* admin.project.addMember({ projectId: alpha.id, user: "ann", role: "member" })
      yield* admin.project.addMember({ projectId: beta.id, user: "ben", role: "viewer" })
      yield* admin.project.removeMember({ projectId: beta.id, user: "ben" })

      const alphaFile = path.join(hub.dataDir, "projects", alpha.id, "project.db")
      const betaFile = path.join(hub.dataDir, "projects", beta.id, "project.db")
      const rootFile = path.join(hub.dataDir, "root.db")
      assert.isTrue(fs.existsSync(alphaFile), alphaFile)
      assert.isTrue(fs.existsSync(betaFile), betaFile)

      assert.deepStrictEqual(
        activity(alphaFile).map((r) => [r.actor, r.action, JSON.parse(r.detail)]),
        [
          ["admin", "project.create", { name: "alpha" }],
          ["admin", "member.add", { user: "ann", role: "member", execute: false }]
        ]
      )
      assert.deepStrictEqual(
        activity(betaFile).map((r) => [r.actor, r.action, JSON.parse(r.detail)]),
        [
          ["admin", "project.create", { name: "beta" }],
          ["admin", "member.add", { user: "ben", role: "viewer", execute: false }],
          ["admin", "member.remove", { user: "ben" }]
        ]
      )

      readOnly(rootFile, (db) => {
        const names = tables(db)
        assert.notInclude(names, "activity")
        assert.includeMembers(names, ["users", "api_keys", "projects", "members"])
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
          for (const rootOnly of ["users", "api_keys", "projects", "members"]) assert.notInclude(names, rootOnly, `${rootOnly} in ${file}`)
        })
      }
    })
  )
})
