import type { SqlClient } from "@effect/sql"

/**
 * The few spellings where the queue's SQL differs between SQLite and PostgreSQL; every statement is
 * written once with these pieces. The SQLite pieces are exactly the text the statements always had
 * (their plans are checked by test/queue/plans.test.ts). Statements use `?` placeholders: on
 * PostgreSQL `placeholders` numbers them (`$1`, `$2`, …) before they are sent.
 */
export interface Dialect {
  readonly pg: boolean
  /** A subquery of the text values of a JSON array parameter (ids). */
  readonly textList: string
  /** A subquery of the integer values of a JSON array parameter (seqs). */
  readonly intList: string
  /** A JSON array parameter as a table `j` whose rows are its elements, in `j.value`. */
  readonly jsonRows: string
  /** An integer-valued expression taken from JSON text (`->>`): cast on PostgreSQL, where `->>` yields text. */
  readonly int: (expr: string) => string
  /** How many rows of the group satisfy `cond` (SQLite sums booleans; PostgreSQL counts with a filter). */
  readonly countIf: (cond: string) => string
  /** A subquery in FROM (PostgreSQL 15 requires an alias). */
  readonly from: (subquery: string, alias: string) => string
  /** Added to a lease's candidate query: rows another transaction holds are passed over. */
  readonly skipLocked: string
  /** The query text as the driver takes it. */
  readonly placeholders: (text: string) => string
}

export const sqliteDialect: Dialect = {
  pg: false,
  textList: "SELECT value FROM json_each(?)",
  intList: "SELECT value FROM json_each(?)",
  jsonRows: "json_each(?) AS j",
  int: (expr) => expr,
  countIf: (cond) => `sum(${cond})`,
  from: (subquery) => `(${subquery})`,
  skipLocked: "",
  placeholders: (text) => text
}

const numbered = new Map<string, string>()

/** `?` → `$1`, `$2`, … outside string literals (memoized: the queue's statement texts are a small set). */
const toNumbered = (text: string): string => {
  let out = numbered.get(text)
  if (out !== undefined) return out
  out = ""
  let n = 0
  let quoted = false
  for (const c of text) {
    if (c === "'") quoted = !quoted
    out += c === "?" && !quoted ? `$${++n}` : c
  }
  if (numbered.size >= 4096) numbered.clear()
  numbered.set(text, out)
  return out
}

export const pgDialect: Dialect = {
  pg: true,
  textList: "SELECT value FROM jsonb_array_elements_text(CAST(? AS jsonb))",
  intList: "SELECT CAST(value AS BIGINT) FROM jsonb_array_elements_text(CAST(? AS jsonb))",
  jsonRows: "jsonb_array_elements(CAST(? AS jsonb)) AS j(value)",
  int: (expr) => `CAST(${expr} AS BIGINT)`,
  countIf: (cond) => `count(*) FILTER (WHERE ${cond})`,
  from: (subquery, alias) => `(${subquery}) AS ${alias}`,
  skipLocked: " FOR UPDATE SKIP LOCKED",
  placeholders: toNumbered
}

/** The dialect of `sql`'s database. */
export const dialectOf = (sql: SqlClient.SqlClient): Dialect => sql.onDialectOrElse({ pg: () => pgDialect, orElse: () => sqliteDialect })
