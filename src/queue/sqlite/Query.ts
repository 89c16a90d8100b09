import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import type { Effect } from "effect"

/**
 * Set-based SQL of the queue, run inside the writer's group-commit transaction: one statement per
 * batch of like operations, driven by a single JSON array parameter where rows differ.
 */
export type Sql = SqlClient.SqlClient
export type Q<A> = Effect.Effect<ReadonlyArray<A>, SqlError>

export const q = <A extends object>(sql: Sql, text: string, params: ReadonlyArray<unknown>): Q<A> => sql.unsafe<A>(text, params)
