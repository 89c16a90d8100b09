import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Schema } from "effect"
import { dialectOf } from "./Dialect.js"

/**
 * Set-based SQL of the queue, run inside the writer's group-commit transaction: one statement per
 * batch of like operations, driven by multi-row VALUES lists (Values.ts) or a JSON array parameter
 * where rows differ. Rows are decoded with Schema where they enter (`rowsOf`).
 */
export type Sql = SqlClient.SqlClient
export type Q<A> = Effect.Effect<ReadonlyArray<A>, SqlError>

/** A statement whose rows are not read (or only counted). Statements use `?` placeholders on every backend (see Dialect.ts). */
export const exec = (sql: Sql, text: string, params: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<unknown>, SqlError> =>
  sql.unsafe<object>(dialectOf(sql).placeholders(text), params)

/**
 * The runner of statements returning rows of `schema`: its decoder is compiled once, here, and each
 * statement's rows are decoded in one call. A row that does not match is a defect (the database
 * holds what the queue wrote).
 */
export const rowsOf = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownSync(Schema.Array(schema))
  return (sql: Sql, text: string, params: ReadonlyArray<unknown>): Q<A> =>
    Effect.flatMap(sql.unsafe<object>(dialectOf(sql).placeholders(text), params), (rows) => Effect.sync(() => decode(rows)))
}
