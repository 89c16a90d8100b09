import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import type { Cause } from "effect"
import { Effect, ParseResult, Schema } from "effect"
import { StorageError } from "../domain/StorageError.js"

/**
 * Column schemas shared by the repositories, written for both backends: SQLite returns integers as
 * numbers and flags as 0/1; PostgreSQL returns bigint and count(*) as strings and flags as booleans.
 */
export const Int = Schema.Union(Schema.Number, Schema.NumberFromString)
export const NullableInt = Schema.NullOr(Int)
/** A real column (PostgreSQL numeric arrives as a string). */
export const Real = Int
export const NullableReal = Schema.NullOr(Real)
export const Flag = Schema.transform(Schema.Union(Schema.Boolean, Int), Schema.Boolean, {
  strict: true,
  decode: (v) => (typeof v === "boolean" ? v : v !== 0),
  encode: (b) => b
})
/** A row holding one count or sum (`SELECT count(*) AS n ...`); NULL (an empty sum) reads as 0. */
export const CountRow = Schema.Struct({ n: Schema.transform(NullableInt, Schema.Number, { strict: true, decode: (n) => n ?? 0, encode: (n) => n }) })
export const IdRow = Schema.Struct({ id: Int })

/**
 * The repositories' edge: SQL failures stay defects (local disk), a row that does not match its
 * schema fails with a readable `StorageError` naming the query.
 */
export const decodedAs =
  (query: string) =>
  <A, R>(effect: Effect.Effect<A, SqlError | ParseResult.ParseError | Cause.NoSuchElementException, R>): Effect.Effect<A, StorageError, R> =>
    Effect.catchAll(effect, (e) =>
      e._tag === "ParseError"
        ? Effect.fail(new StorageError({ query, reason: ParseResult.TreeFormatter.formatErrorSync(e) }))
        : e._tag === "NoSuchElementException"
          ? Effect.fail(new StorageError({ query, reason: "no row returned" }))
          : Effect.die(e)
    )

/**
 * `decodedAs` for repositories whose callers have closed error types: the `StorageError` becomes a
 * defect that still carries the query and the readable decoding failure as its message.
 */
export const decodedOrDie =
  (query: string) =>
  <A, R>(effect: Effect.Effect<A, SqlError | ParseResult.ParseError | Cause.NoSuchElementException, R>): Effect.Effect<A, never, R> =>
    Effect.orDie(decodedAs(query)(effect))

/** Runs `f` with the SQL client of the current fiber (the project's, inside a project). */
export const withSql = <A, E>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) => Effect.flatMap(SqlClient.SqlClient, f)
