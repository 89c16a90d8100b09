import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { TaskId, WorkerId } from "../../domain/Ids.js"
import type { AttemptOutcome, Task } from "../../domain/Task.js"
import type { BatchEffects } from "./BatchEffects.js"
import { q, type Sql } from "./Query.js"
import { insertedTask, type NewTask, newTaskJson, releasedStatusSql, type TaskRow, toTask } from "./TaskRows.js"

/** The queue's inserts and dependency releases; leasing lives in Lease.ts, the query runner in Query.ts. */
export type { Sql } from "./Query.js"
export { lease, leaseSql, type LeaseRequest, randomTokens, TOKENS_PER_LEASE } from "./Lease.js"

/**
 * SQL for `attempt_log` with the current attempt appended as a TaskAttempt, for an UPDATE of a
 * leased row: `endedAt` and `error` are SQL expressions. SQLite's JSON functions;
 * the PostgreSQL equivalent is `coalesce(attempt_log, '[]')::jsonb || jsonb_build_array(jsonb_build_object(…))`.
 */
export const appendAttemptSql = (outcome: AttemptOutcome, endedAt: string, error: string) =>
  `json_insert(coalesce(attempt_log, '[]'), '$[#]', json_object('attempt', attempts, 'workerId', worker_id,
    'startedAt', started_at, 'endedAt', ${endedAt}, 'outcome', '${outcome}', 'error', ${error}))`

const INSERT = `INSERT INTO tasks (id, project_id, kind, payload, priority, run_after, max_attempts, idempotency_key,
    depends_on, dep_policy, concurrency_key, concurrency_limit, status, traceparent, created_at, updated_at)
  SELECT value->>'id', value->>'p', value->>'k', value->'d', value->>'pr', value->>'ra', value->>'ma', value->>'ik',
    value->>'do', value->>'dp', value->>'ck', value->>'cl', value->>'s', value->>'tp', ?, ?
  FROM json_each(?) WHERE true
  ON CONFLICT DO NOTHING
  RETURNING seq, id`

/** Inserts in order; an item whose idempotency key exists (or repeats an earlier item's) yields the existing task. */
export const insertTasks = (sql: Sql, fx: BatchEffects, items: ReadonlyArray<NewTask>) =>
  Effect.gen(function* () {
    const out = new Map<TaskId, Task>()
    if (items.length === 0) return out
    const rows = yield* q<{ seq: number; id: TaskId }>(sql, INSERT, [fx.now, fx.now, JSON.stringify(items.map(newTaskJson))])
    const seqs = new Map(rows.map((r) => [r.id, r.seq]))
    const edges: Array<[TaskId, TaskId]> = []
    const dependents: Array<TaskId> = []
    for (const item of items) {
      const seq = seqs.get(item.id)
      if (seq === undefined) {
        const existing = yield* q<TaskRow>(sql, "SELECT * FROM tasks WHERE project_id = ? AND idempotency_key = ?", [
          item.projectId,
          item.idempotencyKey
        ])
        if (existing[0] === undefined) return yield* Effect.dieMessage(`task id ${item.id} already exists`)
        out.set(item.id, toTask(existing[0]))
        continue
      }
      out.set(item.id, fx.task(insertedTask(item, seq, fx.now), null))
      if (item.dependsOn.length > 0) {
        dependents.push(item.id)
        for (const dep of item.dependsOn) edges.push([dep, item.id])
      }
    }
    if (edges.length > 0) {
      yield* q(sql, "INSERT OR IGNORE INTO task_deps (dep_id, task_id) SELECT value->>0, value->>1 FROM json_each(?)", [
        JSON.stringify(edges)
      ])
      yield* release(sql, fx, dependents, [])
    }
    return out
  })

/** The project of each of `ids` that exists. */
export const lookupProjects = (sql: Sql, ids: ReadonlyArray<TaskId>) =>
  q<{ id: TaskId; project_id: string }>(sql, "SELECT id, project_id FROM tasks WHERE id IN (SELECT value FROM json_each(?))", [
    JSON.stringify(ids)
  ]).pipe(Effect.map((rows) => new Map(rows.map((r) => [r.id, r.project_id]))))

const DECIDE = `SELECT t.id AS id, t.dep_policy AS policy, count(*) AS total,
    sum(d.status = 'done') AS ok, sum(d.status IN ('failed', 'dead', 'cancelled')) AS bad
  FROM tasks t JOIN task_deps x ON x.task_id = t.id JOIN tasks d ON d.id = x.dep_id
  WHERE t.status = 'waiting' AND t.id IN (
    SELECT value FROM json_each(?) UNION SELECT task_id FROM task_deps WHERE dep_id IN (SELECT value FROM json_each(?)))
  GROUP BY t.id`

type Decision = { readonly id: TaskId; readonly policy: string | null; readonly total: number; readonly ok: number; readonly bad: number }

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
    let check = direct
    let done = ended
    while (check.length > 0 || done.length > 0) {
      const decisions = yield* q<Decision>(sql, DECIDE, [JSON.stringify(check), JSON.stringify(done)])
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
          yield* q<TaskRow>(sql, `UPDATE tasks SET status = ${releasedStatusSql}, updated_at = ? WHERE id IN (SELECT value FROM json_each(?)) AND status = 'waiting' RETURNING *`, [
            fx.now,
            JSON.stringify(toQueue)
          ]),
          "waiting"
        )
      }
      if (toFail.length > 0) {
        fx.rows(
          yield* q<TaskRow>(
            sql,
            `UPDATE tasks SET status = 'failed', error = j.value->>'e', finished_at = ?, updated_at = ?
             FROM json_each(?) AS j WHERE tasks.id = j.value->>'id' AND tasks.status = 'waiting' RETURNING *`,
            [fx.now, fx.now, JSON.stringify(toFail)]
          ),
          "waiting"
        )
      }
      if (failFast.length > 0) {
        const siblings = yield* q<{ id: TaskId; status: string }>(
          sql,
          `SELECT id, status FROM tasks WHERE id IN (SELECT dep_id FROM task_deps WHERE task_id IN (SELECT value FROM json_each(?)))
             AND status IN ('waiting', 'queued', 'input_required', 'leased')`,
          [JSON.stringify(failFast)]
        )
        const before = new Map(siblings.map((r) => [r.id, r.status]))
        const cancelled = yield* q<TaskRow>(
          sql,
          `UPDATE tasks SET status = 'cancelled', error = 'cancelled: a sibling dependency failed (fail-fast)', lease_expires_at = NULL,
             attempt_log = CASE WHEN status = 'leased' THEN ${appendAttemptSql("cancelled", "?", "'cancelled: a sibling dependency failed (fail-fast)'")}
               ELSE attempt_log END,
             finished_at = ?, updated_at = ?
           WHERE id IN (SELECT value FROM json_each(?)) RETURNING *`,
          [fx.now, fx.now, fx.now, JSON.stringify(siblings.map((r) => r.id))]
        )
        for (const r of cancelled) {
          if (before.get(r.id as TaskId) === "leased" && r.worker_id !== null) {
            fx.cancels.push({ workerId: r.worker_id as WorkerId, taskId: r.id as TaskId })
          }
        }
        fx.rows(cancelled, (r) => before.get(r.id as TaskId)!)
      }
      check = []
      done = fx.ended.slice(mark)
    }
  })
