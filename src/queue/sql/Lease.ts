import { Effect, Schema } from "effect"
import { randomBytes } from "node:crypto"
import type { TaskId, WorkerId } from "../../domain/Ids.js"
import type { DependencyResult, Task, TaskKind } from "../../domain/Task.js"
import type { BatchEffects } from "./BatchEffects.js"
import { type Dialect, dialectOf, sqliteDialect } from "./Dialect.js"
import { exec, rowsOf, type Sql } from "./Query.js"
import { leasedTask, makeLease, TaskRowSchema, taskRows } from "./TaskRows.js"

/** Leasing queued tasks: the candidate query, fencing tokens, and the dependency results handed with each lease. */

/** The lease-candidate subquery for one kind: straight off `tasks_ready`, no sort step. */
const candidates = (projects: boolean, d: Dialect) => `SELECT seq, priority FROM tasks t
  WHERE status = 'queued' AND kind = ? AND run_after <= ?${projects ? ` AND project_id IN (${d.textList})` : ""}
    AND (concurrency_key IS NULL OR (SELECT count(*) FROM tasks c WHERE c.status = 'leased' AND c.concurrency_key IS NOT NULL
      AND c.project_id = t.project_id AND c.concurrency_key = t.concurrency_key) < concurrency_limit)
  ORDER BY priority DESC, seq LIMIT ?${d.skipLocked}`

/**
 * Each lease statement gets this many fresh random tokens (a JSON array parameter) and gives a task
 * the one at `seq % TOKENS_PER_LEASE`: neighbouring tasks get unrelated tokens, and the randomness
 * comes from the caller, not from the database engine.
 */
export const TOKENS_PER_LEASE = 16

/**
 * Exported for the query-plan test. Parameters: worker, expiry, lease ms, tokens (JSON array), now, now, then the candidates'.
 * On PostgreSQL the candidates are locked `FOR UPDATE SKIP LOCKED`, picked once (an ARRAY subquery
 * is an init plan: an `IN` subquery may be rescanned per row, and a rescan skips the rows this very
 * UPDATE just locked and picks further ones), and the token is taken from the array parameter as jsonb.
 */
export const leaseSql = (kinds: number, projects: boolean, d: Dialect = sqliteDialect): string => {
  const arm = candidates(projects, d)
  const pick =
    kinds === 1
      ? `SELECT seq FROM ${d.from(arm, "a")}`
      : `SELECT seq FROM ${d.from(Array.from({ length: kinds }, (_, i) => `SELECT * FROM ${d.from(arm, `a${i}`)}`).join(" UNION ALL "), "u")}
         ORDER BY priority DESC, seq LIMIT ?`
  const token = d.pg ? `CAST(CAST(? AS jsonb) ->> CAST(seq % ${TOKENS_PER_LEASE} AS INTEGER) AS BIGINT)` : `? ->> (seq % ${TOKENS_PER_LEASE})`
  return `UPDATE tasks SET status = 'leased', worker_id = ?, lease_expires_at = ?, lease_ms = ?,
      fencing_token = ${token}, attempts = attempts + 1, started_at = ?, updated_at = ?
    WHERE ${d.pg ? `seq = ANY(ARRAY(${pick}))` : `seq IN (${pick})`} AND status = 'queued'
    RETURNING seq, id, project_id, priority, concurrency_key, concurrency_limit, depends_on, dep_policy, fencing_token, attempts, traceparent`
}

const MAX_TOKEN = 2 ** 52
let pool = Buffer.alloc(0)
let poolAt = 0

/**
 * `n` fencing tokens: uniform random integers in [2, 2^52), from the system's CSPRNG. A token is
 * never 0 (a task that was never leased) nor 1, and exact as a JSON number and as a 64-bit integer.
 */
export const randomTokens = (n: number): Array<number> => {
  const out: Array<number> = []
  while (out.length < n) {
    if (poolAt + 7 > pool.length) {
      pool = randomBytes(4096)
      poolAt = 0
    }
    const token = (pool[poolAt]! & 0x0f) * 2 ** 48 + pool.readUIntBE(poolAt + 1, 6)
    poolAt += 7
    if (token >= 2 && token < MAX_TOKEN) out.push(token)
  }
  return out
}

export interface LeaseRequest {
  readonly workerId: WorkerId
  readonly kinds: ReadonlyArray<TaskKind>
  readonly max: number
  readonly leaseMs: number
  /** Only tasks of these projects (all when undefined). */
  readonly projectIds?: ReadonlyArray<string> | undefined
}

/** What the lease UPDATE returns; the rest of each Task comes from the hot cache (or a read on a miss). */
const LeaseRow = TaskRowSchema.pick(
  "seq",
  "id",
  "project_id",
  "priority",
  "concurrency_key",
  "concurrency_limit",
  "depends_on",
  "dep_policy",
  "fencing_token",
  "attempts",
  "traceparent"
)
type LeaseRow = typeof LeaseRow.Type
const leaseRows = rowsOf(LeaseRow)
const countRows = rowsOf(Schema.Struct({ n: Schema.Number }))
const DependencyRow = Schema.Struct({
  task_id: TaskRowSchema.fields.id,
  id: TaskRowSchema.fields.id,
  status: TaskRowSchema.fields.status,
  payload: Schema.String,
  result: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String)
})
const dependencyRows = rowsOf(DependencyRow)

const byOrder = (a: { priority: number; seq: number }, b: { priority: number; seq: number }) => b.priority - a.priority || a.seq - b.seq

/** One UPDATE … RETURNING over the candidates; concurrency keys over-picked within the batch are handed back. */
export const lease = (sql: Sql, fx: BatchEffects, req: LeaseRequest) =>
  Effect.gen(function* () {
    const d = dialectOf(sql)
    const expiresAt = fx.now + req.leaseMs
    const params: Array<unknown> = [req.workerId, expiresAt, req.leaseMs, JSON.stringify(randomTokens(TOKENS_PER_LEASE)), fx.now, fx.now]
    const projects = req.projectIds === undefined ? undefined : JSON.stringify(req.projectIds)
    for (const kind of req.kinds) {
      params.push(kind, fx.now)
      if (projects !== undefined) params.push(projects)
      params.push(req.max)
    }
    if (req.kinds.length > 1) params.push(req.max)
    let rows = [...(yield* leaseRows(sql, leaseSql(req.kinds.length, projects !== undefined, d), params))].sort(byOrder)
    if (rows.length === 0) return []
    const keyed = rows.filter((r) => r.concurrency_key !== null)
    if (keyed.length > 1) {
      const excess = yield* overPicked(sql, keyed)
      if (excess.size > 0) {
        // (the fresh token stays: a queued task's token means nothing until its next lease replaces it)
        yield* exec(
          sql,
          `UPDATE tasks SET status = 'queued', worker_id = NULL, lease_expires_at = NULL, lease_ms = 0,
             attempts = attempts - 1 WHERE seq IN (${d.intList})`,
          [JSON.stringify([...excess])]
        )
        rows = rows.filter((r) => !excess.has(r.seq))
      }
    }
    const tasks: Array<Task> = []
    const misses: Array<number> = []
    for (const r of rows) {
      const before = fx.hot.get(r.id)
      if (before === undefined || before.status !== "queued" || before.attempts + 1 !== r.attempts) misses.push(r.seq)
      else tasks.push(fx.task(leasedTask(before, req.workerId, expiresAt, fx.now, r.fencing_token), "queued"))
    }
    if (misses.length > 0) {
      const full = yield* taskRows(sql, `SELECT * FROM tasks WHERE seq IN (${d.intList})`, [JSON.stringify(misses)])
      tasks.push(...fx.rows(full, "queued"))
      tasks.sort(byOrder)
    }
    const inputs = yield* dependencyInputs(sql, rows)
    const traced = new Map<string, string>()
    for (const r of rows) if (r.traceparent != null) traced.set(r.id, r.traceparent)
    return tasks.map((task) => {
      const deps = inputs.get(task.id)
      return makeLease({
        task,
        fencingToken: task.fencingToken,
        expiresAt,
        inputs: deps?.inputs ?? {},
        dependencies: deps?.list ?? [],
        traceparent: traced.get(task.id)
      })
    })
  })

/** Rows of a key picked beyond its limit in this batch (the lowest-ranked ones). */
const overPicked = (sql: Sql, keyed: ReadonlyArray<LeaseRow>) =>
  Effect.gen(function* () {
    const groups = new Map<string, Array<LeaseRow>>()
    for (const r of keyed) {
      const k = JSON.stringify([r.project_id, r.concurrency_key])
      const g = groups.get(k)
      if (g) g.push(r)
      else groups.set(k, [r])
    }
    const excess = new Set<number>()
    for (const group of groups.values()) {
      if (group.length < 2) continue
      const first = group[0]!
      const [{ n } = { n: 0 }] = yield* countRows(
        sql,
        "SELECT count(*) AS n FROM tasks WHERE status = 'leased' AND concurrency_key IS NOT NULL AND project_id = ? AND concurrency_key = ?",
        [first.project_id, first.concurrency_key]
      )
      const over = n - first.concurrency_limit
      for (let i = 0; i < over && i < group.length; i++) excess.add(group[group.length - 1 - i]!.seq)
    }
    return excess
  })

/**
 * How each leased task's dependencies ended, in `dependsOn` order (for a reduce task: the map items'
 * order): as a list of DependencyResult, and by id as `inputs` (the bare result under
 * `all`/`fail-fast`; `{index, item, status, result, error}` under `partial`/`quorum:K`, where some
 * may not have succeeded).
 */
const dependencyInputs = (sql: Sql, rows: ReadonlyArray<LeaseRow>) =>
  Effect.gen(function* () {
    const out = new Map<TaskId, { inputs: Record<string, unknown>; list: Array<DependencyResult> }>()
    const withDeps = rows.filter((r) => r.depends_on !== null)
    if (withDeps.length === 0) return out
    const deps = yield* dependencyRows(
      sql,
      `SELECT x.task_id AS task_id, d.id AS id, d.status AS status, d.payload AS payload, d.result AS result, d.error AS error
       FROM task_deps x JOIN tasks d ON d.id = x.dep_id WHERE x.task_id IN (${dialectOf(sql).textList})`,
      [JSON.stringify(withDeps.map((r) => r.id))]
    )
    const byTask = new Map<TaskId, Map<TaskId, (typeof deps)[number]>>()
    for (const d of deps) {
      let m = byTask.get(d.task_id)
      if (m === undefined) byTask.set(d.task_id, (m = new Map()))
      m.set(d.id, d)
    }
    for (const r of withDeps) {
      const found = byTask.get(r.id)
      if (found === undefined) continue
      const policy = r.dep_policy ?? "all"
      const bare = policy === "all" || policy === "fail-fast"
      const inputs: Record<string, unknown> = {}
      const list: Array<DependencyResult> = []
      const order = JSON.parse(r.depends_on!) as ReadonlyArray<TaskId>
      for (let index = 0; index < order.length; index++) {
        const d = found.get(order[index]!)
        if (d === undefined || Object.hasOwn(inputs, d.id)) continue
        const dep: DependencyResult = {
          index,
          taskId: d.id,
          item: JSON.parse(d.payload),
          status: d.status,
          result: d.result === null ? null : JSON.parse(d.result),
          error: d.error
        }
        list.push(dep)
        inputs[d.id] = bare ? dep.result : { index, item: dep.item, status: dep.status, result: dep.result, error: dep.error }
      }
      out.set(r.id, { inputs, list })
    }
    return out
  })
