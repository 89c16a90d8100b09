import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Schema } from "effect"
import type { TaskId } from "../../domain/Ids.js"
import type { AttemptOutcome, Task } from "../../domain/Task.js"
import type { BatchEffects } from "./BatchEffects.js"
import { type Dialect, dialectOf } from "./Dialect.js"
import { exec, rowsOf, type Sql } from "./Query.js"
import { insertedTask, type NewTask, readyStatus, releasedStatusSql, TaskRowSchema, taskRows, toTask } from "./TaskRows.js"
import { chunkSizes, valuesList } from "./Values.js"

/** The queue's inserts and dependency releases; leasing lives in Lease.ts, the query runner in Query.ts. */
export type { Sql } from "./Query.js"
export { lease, leaseSql, type LeaseRequest, randomTokens, TOKENS_PER_LEASE } from "./Lease.js"

/**
 * SQL for `attempt_log` with the current attempt appended as a TaskAttempt, for an UPDATE of a
 * leased row: `endedAt` (an integer) and `error` are SQL expressions. SQLite's JSON functions, or
 * PostgreSQL's jsonb ones (the column stays JSON text).
 */
export const appendAttemptSql = (outcome: AttemptOutcome, endedAt: string, error: string, d?: Dialect) =>
  d?.pg === true
    ? `CAST(CAST(coalesce(attempt_log, '[]') AS jsonb) || jsonb_build_array(jsonb_build_object('attempt', attempts, 'workerId', worker_id,
    'startedAt', started_at, 'endedAt', CAST(${endedAt} AS BIGINT), 'outcome', '${outcome}', 'error', ${error})) AS TEXT)`
    : `json_insert(coalesce(attempt_log, '[]'), '$[#]', json_object('attempt', attempts, 'workerId', worker_id,
    'startedAt', started_at, 'endedAt', ${endedAt}, 'outcome', '${outcome}', 'error', ${error}))`

const insertedRows = rowsOf(TaskRowSchema.pick("seq", "id"))
const projectRows = rowsOf(TaskRowSchema.pick("id", "project_id"))
const statusRows = rowsOf(TaskRowSchema.pick("id", "status"))

const INSERT_COLUMNS = 16
const insertSql = (rows: number) => `INSERT INTO tasks (id, project_id, kind, payload, priority, run_after, max_attempts, idempotency_key,
    depends_on, dep_policy, concurrency_key, concurrency_limit, status, traceparent, created_at, updated_at)
  VALUES ${valuesList(`(${Array.from({ length: INSERT_COLUMNS }, () => "?").join(", ")})`, rows)}
  ON CONFLICT DO NOTHING
  RETURNING seq, id`

/** Inserts in order; an item whose idempotency key exists (or repeats an earlier item's) yields the existing task. */
export const insertTasks = (sql: Sql, fx: BatchEffects, items: ReadonlyArray<NewTask>) =>
  Effect.gen(function* () {
    const out = new Map<TaskId, Task>()
    if (items.length === 0) return out
    const seqs = new Map<TaskId, number>()
    let at = 0
    for (const size of chunkSizes(items.length)) {
      const params: Array<unknown> = new Array(size * INSERT_COLUMNS)
      let p = 0
      for (let i = at; i < at + size; i++) {
        const t = items[i]!
        const deps = t.dependsOn.length > 0
        params[p++] = t.id
        params[p++] = t.projectId
        params[p++] = t.kind
        params[p++] = JSON.stringify(t.payload === undefined ? null : t.payload)
        params[p++] = t.priority
        params[p++] = t.runAfter
        params[p++] = t.maxAttempts
        params[p++] = t.idempotencyKey
        params[p++] = deps ? JSON.stringify(t.dependsOn) : null
        params[p++] = deps ? (t.dependencyPolicy ?? "all") : null
        params[p++] = t.concurrencyKey
        params[p++] = t.concurrencyLimit
        params[p++] = readyStatus(t)
        params[p++] = t.traceparent ?? null
        params[p++] = fx.now
        params[p++] = fx.now
      }
      at += size
      for (const r of yield* insertedRows(sql, insertSql(size), params)) seqs.set(r.id, r.seq)
    }
    const edges: Array<[TaskId, TaskId]> = []
    const dependents: Array<TaskId> = []
    for (const item of items) {
      const seq = seqs.get(item.id)
      if (seq === undefined) {
        const [existing] = yield* taskRows(sql, "SELECT * FROM tasks WHERE project_id = ? AND idempotency_key = ?", [
          item.projectId,
          item.idempotencyKey
        ])
        if (existing === undefined) return yield* Effect.dieMessage(`task id ${item.id} already exists`)
        out.set(item.id, toTask(existing))
        continue
      }
      out.set(item.id, fx.task(insertedTask(item, seq, fx.now), null))
      if (item.dependsOn.length > 0) {
        dependents.push(item.id)
        for (const dep of item.dependsOn) edges.push([dep, item.id])
      }
    }
    if (edges.length > 0) {
      let from = 0
      for (const size of chunkSizes(edges.length)) {
        yield* exec(
          sql,
          `INSERT INTO task_deps (dep_id, task_id) VALUES ${valuesList("(?, ?)", size)} ON CONFLICT DO NOTHING`,
          edges.slice(from, from + size).flat()
        )
        from += size
      }
      yield* release(sql, fx, dependents, [])
    }
    return out
  })

/** The project of each of `ids` that exists. */
export const lookupProjects = (sql: Sql, ids: ReadonlyArray<TaskId>) =>
  projectRows(sql, `SELECT id, project_id FROM tasks WHERE id IN (${dialectOf(sql).textList})`, [JSON.stringify(ids)]).pipe(
    Effect.map((rows) => new Map(rows.map((r) => [r.id, r.project_id])))
  )

const decideSql = (d: Dialect) => `SELECT t.id AS id, t.dep_policy AS policy, count(*) AS total,
    ${d.countIf("d.status = 'done'")} AS ok, ${d.countIf("d.status IN ('failed', 'dead', 'cancelled')")} AS bad
  FROM tasks t JOIN task_deps x ON x.task_id = t.id JOIN tasks d ON d.id = x.dep_id
  WHERE t.status = 'waiting' AND t.id IN (
    ${d.textList} UNION SELECT task_id FROM task_deps WHERE dep_id IN (${d.textList}))
  GROUP BY t.id${d.pg ? ", t.dep_policy" : ""}`

const Decision = Schema.Struct({
  id: TaskRowSchema.fields.id,
  policy: Schema.NullOr(Schema.String),
  total: Schema.Number,
  ok: Schema.Number,
  bad: Schema.Number
})
type Decision = typeof Decision.Type
const decisionRows = rowsOf(Decision)

const verdict = (d: Decision): { queue: boolean } | { fail: string; cancelSiblings: boolean } | null => {
  const pending = d.total - d.ok - d.bad
  const policy = d.policy ?? "all"
  if (policy === "partial") return pending === 0 ? { queue: true } : null
  if (policy.startsWith("quorum:")) {
    const k = Number(policy.slice("quorum:".length))
    if (d.ok + pending < k) return { fail: `quorum not reached: ${d.ok} of ${d.total} dependencies done, ${k} needed`, cancelSiblings: false }
    return pending === 0 ? { queue: true } : null
  }
  if (d.bad > 0) {
    return { fail: `${d.bad} of ${d.total} dependencies did not succeed (policy ${policy})`, cancelSiblings: policy === "fail-fast" }
  }
  return pending === 0 ? { queue: true } : null
}

/**
 * Moves waiting tasks whose dependencies have settled per their policy: `direct` are checked
 * themselves, `ended` are tasks that just ended (their dependents are checked). Cascades.
 */
export const release = (sql: Sql, fx: BatchEffects, direct: ReadonlyArray<TaskId>, ended: ReadonlyArray<TaskId>): Effect.Effect<void, SqlError> =>
  Effect.gen(function* () {
    const d = dialectOf(sql)
    const DECIDE = decideSql(d)
    let check = direct
    let done = ended
    while (check.length > 0 || done.length > 0) {
      const decisions = yield* decisionRows(sql, DECIDE, [JSON.stringify(check), JSON.stringify(done)])
      const toQueue: Array<TaskId> = []
      const toFail: Array<{ id: TaskId; e: string }> = []
      const failFast: Array<TaskId> = []
      for (const d of decisions) {
        const v = verdict(d)
        if (v === null) continue
        if ("queue" in v) toQueue.push(d.id)
        else {
          toFail.push({ id: d.id, e: v.fail })
          if (v.cancelSiblings) failFast.push(d.id)
        }
      }
      const mark = fx.ended.length
      if (toQueue.length > 0) {
        fx.rows(
          yield* taskRows(
            sql,
            `UPDATE tasks SET status = ${releasedStatusSql}, updated_at = ? WHERE id IN (${d.textList}) AND status = 'waiting' RETURNING *`,
            [fx.now, JSON.stringify(toQueue)]
          ),
          "waiting"
        )
      }
      if (toFail.length > 0) {
        fx.rows(
          yield* taskRows(
            sql,
            `UPDATE tasks SET status = 'failed', error = j.value->>'e', finished_at = ?, updated_at = ?
             FROM ${d.jsonRows} WHERE tasks.id = j.value->>'id' AND tasks.status = 'waiting' RETURNING *`,
            [fx.now, fx.now, JSON.stringify(toFail)]
          ),
          "waiting"
        )
      }
      if (failFast.length > 0) {
        const siblings = yield* statusRows(
          sql,
          `SELECT id, status FROM tasks WHERE id IN (SELECT dep_id FROM task_deps WHERE task_id IN (${d.textList}))
             AND status IN ('waiting', 'queued', 'input_required', 'leased')`,
          [JSON.stringify(failFast)]
        )
        const before = new Map(siblings.map((r) => [r.id, r.status]))
        const cancelled = yield* taskRows(
          sql,
          `UPDATE tasks SET status = 'cancelled', error = 'cancelled: a sibling dependency failed (fail-fast)', lease_expires_at = NULL,
             attempt_log = CASE WHEN status = 'leased' THEN ${appendAttemptSql("cancelled", "?", "'cancelled: a sibling dependency failed (fail-fast)'", d)}
               ELSE attempt_log END,
             finished_at = ?, updated_at = ?
           WHERE id IN (${d.textList}) RETURNING *`,
          [fx.now, fx.now, fx.now, JSON.stringify(siblings.map((r) => r.id))]
        )
        for (const r of cancelled) {
          if (before.get(r.id) === "leased" && r.worker_id !== null) {
            fx.cancels.push({ workerId: r.worker_id, taskId: r.id })
          }
        }
        fx.rows(cancelled, (r) => before.get(r.id)!)
      }
      check = []
      done = fx.ended.slice(mark)
    }
  })
