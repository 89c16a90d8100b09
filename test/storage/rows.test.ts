import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlSchema } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Option, Schema } from "effect"
import * as path from "node:path"
import { UsersRepo } from "../../src/auth/UsersRepo.js"
import { StorageError } from "../../src/domain/StorageError.js"
import { rootMigrations } from "../../src/storage/migrations/root.js"
import { RootDb } from "../../src/storage/RootDb.js"
import { decodedAs, Flag, Int } from "../../src/storage/Rows.js"
import { openSqlite } from "../../src/storage/Sqlite.js"
import { scopedTempDir } from "../support/TempDir.js"

const rootDb = Effect.gen(function* () {
  const dir = yield* scopedTempDir("kiris-rows-")
  return yield* openSqlite(path.join(dir, "root.db"), rootMigrations)
}).pipe(Effect.provide(Reactivity.layer))

describe("rows decoded at the repository edge", () => {
  it.scoped("a row that does not match its schema is a StorageError naming the query and the column", () =>
    Effect.gen(function* () {
      const sql = yield* rootDb
      yield* sql`INSERT INTO users (id, name, password_hash, is_admin, created_at) VALUES ('usr_1', 'ann', 'h', 1, 'yesterday')`
      const read = SqlSchema.findAll({
        Request: Schema.Void,
        Result: Schema.Struct({ id: Schema.String, is_admin: Flag, created_at: Int }),
        execute: () => sql`SELECT id, is_admin, created_at FROM users`
      })
      const error = yield* Effect.flip(read(undefined).pipe(decodedAs("users")))
      assert.instanceOf(error, StorageError)
      assert.strictEqual(error.query, "users")
      assert.match(error.reason, /created_at/)
      assert.match(error.message, /^stored data does not match \(users\): /)
    })
  )

  it("integer and flag columns read from both backends' shapes", () => {
    const decode = Schema.decodeUnknownSync(Schema.Struct({ n: Int, f: Flag }))
    assert.deepStrictEqual(decode({ n: 3, f: 1 }), { n: 3, f: true }, "SQLite: numbers and 0/1")
    assert.deepStrictEqual(decode({ n: "3", f: false }), { n: 3, f: false }, "PostgreSQL: bigint as text and booleans")
    assert.throws(() => decode({ n: "three", f: 1 }))
  })

  it.scoped("a repository dies with the readable StorageError, not a bare parse failure", () =>
    Effect.gen(function* () {
      const sql = yield* rootDb
      yield* sql`INSERT INTO users (id, name, password_hash, is_admin, created_at) VALUES ('usr_1', 'ann', 'h', 1, 0)`
      const repo = yield* UsersRepo.pipe(Effect.provide(UsersRepo.Default), Effect.provideService(RootDb, sql))
      assert.strictEqual((yield* repo.list).length, 1, "a good row reads")
      yield* sql`UPDATE users SET is_admin = 'sometimes'`
      const exit = yield* Effect.exit(repo.byName("ann"))
      assert.isTrue(Exit.isFailure(exit))
      const defect = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.dieOption(exit.cause)) : undefined
      assert.instanceOf(defect, StorageError)
      assert.match(String((defect as StorageError).message), /users by name.*is_admin/s)
    })
  )
})
