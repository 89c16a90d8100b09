import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Exit } from "effect"
import { InvalidInput, NotFound } from "../../domain/Errors.js"
import type { TaskId, WorkerId } from "../../domain/Ids.js"
import { type AttemptOutcome, LeaseLost, leaseNotHeld, type Task, type TaskAttempt } from "../../domain/Task.js"
import type { CompleteItem, CompleteOutcome, HeartbeatResult } from "../TaskQueue.js"
import type { BatchEffects } from "./BatchEffects.js"
import { dialectOf } from "./Dialect.js"
import type { Sql } from "./Statements.js"
import { rowsOf } from "./Query.js"
import { attemptLog, completedTask, isSuspect, isTerminal, releasedStatusSql, type TaskRow, TaskRowSchema, taskRows, toTask } from "./TaskRows.js"
import { chunkSizes, valuesList } from "./Values.js"

/** Single-task and per-batch state transitions other than enqueue and lease. */

/** A fenced call's target as the database has it now. */
export const Current = TaskRowSchema.pick("id", "status", "worker_id", "fencing_token")
export type Current = typeof Current.Type
const currentRows = rowsOf(Current)
const doneRows = rowsOf(TaskRowSchema.pick("id", "fencing_token"))
const kindRows = rowsOf(TaskRowSchema.pick("kind"))

const currentOf = (sql: Sql, ids: ReadonlyArray<TaskId>) =>
  currentRows(sql, `SELECT id, status, worker_id, fencing_token FROM tasks WHERE id IN (${dialectOf(sql).textList})`, [JSON.stringify(ids)]).pipe(
    Effect.map((rows) => new Map(rows.map((r) => [r.id, r])))
  )

/**
 * Why a fenced call of `workerId` was refused, given the task's current state (undefined: unknown
 * task). Only the worker and token of the task's last lease learn more than `leaseNotHeld`.
 */
export const refusal = (taskId: TaskId, workerId: WorkerId, token: number, current: Current | undefined): LeaseLost => {
  if (current === undefined || current.worker_id !== workerId || current.fencing_token !== token || current.status === "leased") {
    return leaseNotHeld(taskId)
  }
  if (current.status === "cancelled") return new LeaseLost({ taskId, reason: "the task was cancelled" })
  return new LeaseLost({ taskId, reason: `the task is no longer leased (status ${current.status})` })
}

/** A completion on behalf of the worker that holds (or claims to hold) the lease. */
export interface HeldCompleteItem extends CompleteItem {
  readonly workerId: WorkerId
}

/** `attempt_log` text of a leased row with its current attempt appended, ended now with `outcome`. */
const logWithEnded = (row: TaskRow, outcome: AttemptOutcome, error: string | null, now: number): { log: string; history: Array<TaskAttempt> } => {
  const history = [
    ...attemptLog(row.attempt_log),
    { attempt: row.attempts, workerId: row.worker_id, startedAt: row.started_at, endedAt: now, outcome, error }
  ]
  return { log: JSON.stringify(history), history }
}

/** The completion UPDATE for `rows` items: (task id, token, worker id, result JSON) each. */
const completeSql = (rows: number) =>
  `UPDATE tasks SET status = 'done', result = j.column4, error = NULL, lease_expires_at = NULL, finished_at = ?, updated_at = ?
   FROM (VALUES ${valuesList("(?, CAST(? AS BIGINT), ?, ?)", rows)}) AS j
   WHERE tasks.id = j.column1 AND tasks.fencing_token = j.column2 AND tasks.worker_id = j.column3 AND tasks.status = 'leased'
   RETURNING tasks.id AS id, tasks.fencing_token AS fencing_token`

/**
 * done ← leased, for every item whose worker and token are current; the others are refused and change
 * nothing. The successful attempt is not logged in `attempt_log`: the done task itself describes it.
 */
export const completeMany = (sql: Sql, fx: BatchEffects, items: ReadonlyArray<HeldCompleteItem>) =>
  Effect.gen(function* () {
    const done: Array<{ readonly id: TaskId; readonly fencing_token: number }> = []
    let at = 0
    for (const size of chunkSizes(items.length)) {
      const params: Array<unknown> = [fx.now, fx.now]
      for (let k = at; k < at + size; k++) {
        const i = items[k]!
        params.push(i.taskId, i.fencingToken, i.workerId, i.result === undefined ? null : JSON.stringify(i.result))
      }
      at += size
      done.push(...(yield* doneRows(sql, completeSql(size), params)))
    }
    const results = new Map(items.map((i) => [i.taskId, i.result]))
    const updated = new Map<TaskId, Task>()
    const uncached: Array<TaskId> = []
    for (const r of done) {
      const id = r.id
      const before = fx.hot.get(id)
      if (before === undefined || before.fencingToken !== r.fencing_token) uncached.push(id)
      else updated.set(id, fx.task(completedTask(before, results.get(id), fx.now), "leased"))
    }
    if (uncached.length > 0) {
      const rows = yield* taskRows(sql, `SELECT * FROM tasks WHERE id IN (${dialectOf(sql).textList})`, [JSON.stringify(uncached)])
      for (const r of rows) updated.set(r.id, fx.row(r, "leased"))
    }
    const missing = items.filter((i) => !updated.has(i.taskId)).map((i) => i.taskId)
    const current = missing.length > 0 ? yield* currentOf(sql, missing) : new Map<TaskId, Current>()
    const claimed = new Set<TaskId>()
    return items.map((i): CompleteOutcome => {
      const task = updated.get(i.taskId)
      if (task !== undefined && !claimed.has(i.taskId) && task.fencingToken === i.fencingToken && task.workerId === i.workerId) {
        claimed.add(i.taskId)
        return { taskId: i.taskId, ok: true, task }
      }
      const now =
        task !== undefined ? { id: task.id, status: task.status, worker_id: task.workerId, fencing_token: task.fencingToken } : current.get(i.taskId)
      return { taskId: i.taskId, ok: false, error: refusal(i.taskId, i.workerId, i.fencingToken, now) }
    })
  })

export interface HeartbeatItem {
  readonly workerId: WorkerId
  readonly taskId: TaskId
  readonly fencingToken: number
  readonly progress: unknown
}

/** Extends each current lease by its duration and records progress; a cancelled lease reports `cancelled`. */
export const heartbeatMany = (sql: Sql, fx: BatchEffects, items: ReadonlyArray<HeartbeatItem>) =>
  Effect.gen(function* () {
    const d = dialectOf(sql)
    const rows = yield* taskRows(
      sql,
      `UPDATE tasks SET lease_expires_at = ? + lease_ms, updated_at = ?,
         progress = ${d.pg ? "CASE WHEN CAST(j.value->>'hp' AS BOOLEAN) THEN CAST(j.value->'p' AS TEXT) ELSE progress END" : "CASE WHEN j.value->>'hp' THEN j.value->'p' ELSE progress END"}
       FROM ${d.jsonRows}
       WHERE tasks.id = j.value->>'id' AND tasks.fencing_token = ${d.int("j.value->>'t'")} AND tasks.worker_id = j.value->>'w'
         AND tasks.status = 'leased'
       RETURNING *`,
      [
        fx.now,
        fx.now,
        JSON.stringify(items.map((i) => ({ id: i.taskId, t: i.fencingToken, w: i.workerId, hp: i.progress !== undefined, p: i.progress })))
      ]
    )
    const extended = new Map(rows.map((r) => [r.id, r]))
    const missing = items.filter((i) => !extended.has(i.taskId)).map((i) => i.taskId)
    const current = missing.length > 0 ? yield* currentOf(sql, missing) : new Map<TaskId, Current>()
    return items.map((i): Exit.Exit<HeartbeatResult, LeaseLost> => {
      const row = extended.get(i.taskId)
      if (row !== undefined) {
        if (i.progress !== undefined) fx.row(row, "leased")
        return Exit.succeed({ expiresAt: row.lease_expires_at ?? fx.now, cancelled: false })
      }
      const cur = current.get(i.taskId)
      if (cur?.status === "cancelled" && cur.fencing_token === i.fencingToken && cur.worker_id === i.workerId) {
        return Exit.succeed({ expiresAt: fx.now, cancelled: true })
      }
      return Exit.fail(refusal(i.taskId, i.workerId, i.fencingToken, cur))
    })
  })

const rowById = (sql: Sql, taskId: TaskId) =>
  Effect.flatMap(taskRows(sql, "SELECT * FROM tasks WHERE id = ?", [taskId]), (rows) =>
    rows[0] === undefined ? Effect.fail(new NotFound({ entity: "task", id: taskId })) : Effect.succeed(rows[0])
  )

export interface Backoff {
  readonly baseMs: number
  readonly maxMs: number
}

/** base × 2^(attempt-1), capped, with ±20% jitter. */
export const backoffMs = (b: Backoff, attempt: number): number =>
  Math.round(Math.min(b.baseMs * 2 ** Math.max(0, attempt - 1), b.maxMs) * (0.8 + Math.random() * 0.4))

export const failOne = (
  sql: Sql,
  fx: BatchEffects,
  backoff: Backoff,
  workerId: WorkerId,
  taskId: TaskId,
  token: number,
  message: string,
  retryable: boolean
) =>
  Effect.gen(function* () {
    const [row] = yield* taskRows(sql, "SELECT * FROM tasks WHERE id = ?", [taskId])
    if (row === undefined || row.status !== "leased" || row.fencing_token !== token || row.worker_id !== workerId) {
      return yield* refusal(taskId, workerId, token, row)
    }
    const status = !retryable ? "failed" : row.attempts >= row.max_attempts ? "dead" : "queued"
    const runAfter = status === "queued" ? fx.now + backoffMs(backoff, row.attempts) : row.run_after
    const [updated] = yield* taskRows(
      sql,
      `UPDATE tasks SET status = ?, run_after = ?, error = ?, lease_expires_at = NULL, attempt_log = ?,
         worker_id = CASE WHEN ? = 'queued' THEN NULL ELSE worker_id END, finished_at = ?, updated_at = ?
       WHERE id = ? RETURNING *`,
      [status, runAfter, message, logWithEnded(row, "failed", message, fx.now).log, status, status === "queued" ? null : fx.now, fx.now, taskId]
    )
    return fx.row(updated!, row.status)
  })

export const cancelOne = (sql: Sql, fx: BatchEffects, taskId: TaskId) =>
  Effect.gen(function* () {
    const row = yield* rowById(sql, taskId)
    if (isTerminal(row.status)) return toTask(row)
    const [updated] = yield* taskRows(
      sql,
      `UPDATE tasks SET status = 'cancelled', error = 'cancelled', lease_expires_at = NULL, attempt_log = ?, finished_at = ?, updated_at = ?
       WHERE id = ? RETURNING *`,
      [row.status === "leased" ? logWithEnded(row, "cancelled", "cancelled", fx.now).log : row.attempt_log, fx.now, fx.now, taskId]
    )
    if (row.status === "leased" && row.worker_id !== null) fx.cancels.push({ workerId: row.worker_id, taskId })
    return fx.row(updated!, row.status)
  })

export const retryOne = (sql: Sql, fx: BatchEffects, taskId: TaskId) =>
  Effect.gen(function* () {
    const row = yield* rowById(sql, taskId)
    if (row.status !== "failed" && row.status !== "dead" && row.status !== "cancelled") {
      return yield* new InvalidInput({ reason: `only failed, dead or cancelled tasks can be retried; ${taskId} is ${row.status}` })
    }
    const [updated] = yield* taskRows(
      sql,
      `UPDATE tasks SET status = ${releasedStatusSql}, attempts = 0, run_after = 0, worker_id = NULL, lease_expires_at = NULL, lease_ms = 0,
         error = NULL, result = NULL, progress = NULL, finished_at = NULL, updated_at = ?
       WHERE id = ? RETURNING *`,
      [fx.now, taskId]
    )
    return fx.row(updated!, row.status)
  })

/** How a `human` task is answered: the status it ends in, and the column the answer goes to. */
interface HumanAnswer {
  readonly verb: "approved" | "rejected"
  readonly status: "done" | "failed"
  readonly column: "result" | "error"
  readonly value: string
}

/** Ends a not-yet-ended `human` task with `answer`; a worker holding its lease is told to cancel it. */
const answerHuman = (sql: Sql, fx: BatchEffects, taskId: TaskId, answer: HumanAnswer) =>
  Effect.gen(function* () {
    const row = yield* rowById(sql, taskId)
    if (row.kind !== "human") return yield* new InvalidInput({ reason: `only human tasks are ${answer.verb}; ${taskId} is a ${row.kind} task` })
    if (isTerminal(row.status)) return yield* new InvalidInput({ reason: `task ${taskId} has already ended (${row.status})` })
    const [updated] = yield* taskRows(
      sql,
      `UPDATE tasks SET status = '${answer.status}', ${answer.column} = ?, lease_expires_at = NULL, finished_at = ?, updated_at = ? WHERE id = ? RETURNING *`,
      [answer.value, fx.now, fx.now, taskId]
    )
    if (row.status === "leased" && row.worker_id !== null) fx.cancels.push({ workerId: row.worker_id, taskId })
    return fx.row(updated!, row.status)
  })

/** Ends a not-yet-ended `human` task as done, with `result` as its result. */
export const approveOne = (sql: Sql, fx: BatchEffects, taskId: TaskId, result: unknown) =>
  answerHuman(sql, fx, taskId, { verb: "approved", status: "done", column: "result", value: JSON.stringify(result === undefined ? null : result) })

/** Ends a not-yet-ended `human` task as failed, with the reason it was rejected as its error. */
export const rejectOne = (sql: Sql, fx: BatchEffects, taskId: TaskId, reason: string) =>
  answerHuman(sql, fx, taskId, { verb: "rejected", status: "failed", column: "error", value: reason })

/**
 * Expired leases go back to `queued` after a retry backoff (as a failure does), or to `dead` when
 * out of attempts; each expiry is logged as an `expired` attempt, and a task whose lease expired on
 * SUSPECT_AFTER_WORKERS different workers becomes `suspect`. Delayed tasks whose time came since
 * `since` wake their workers.
 */
export const reap = (sql: Sql, fx: BatchEffects, backoff: Backoff, since: number): Effect.Effect<void, SqlError> =>
  Effect.gen(function* () {
    const d = dialectOf(sql)
    const expired = yield* taskRows(sql, "SELECT * FROM tasks WHERE status = 'leased' AND lease_expires_at <= ?", [fx.now])
    if (expired.length > 0) {
      for (const row of expired) fx.expiredKinds.push(row.kind)
      const changes = expired.map((row) => {
        const dead = row.attempts >= row.max_attempts
        const error = `lease expired: worker ${row.worker_id ?? "?"} stopped renewing it`
        const { log, history } = logWithEnded(row, "expired", error, fx.now)
        return {
          id: row.id,
          t: row.fencing_token,
          s: dead ? "dead" : "queued",
          ra: dead ? row.run_after : fx.now + backoffMs(backoff, row.attempts),
          e: error,
          l: log,
          x: row.suspect !== 0 || isSuspect(history) ? 1 : 0
        }
      })
      fx.rows(
        yield* taskRows(
          sql,
          `UPDATE tasks SET
             status = j.value->>'s',
             run_after = ${d.int("j.value->>'ra'")},
             error = j.value->>'e',
             attempt_log = j.value->>'l',
             suspect = ${d.int("j.value->>'x'")},
             worker_id = CASE WHEN j.value->>'s' = 'dead' THEN worker_id ELSE NULL END,
             lease_expires_at = NULL,
             finished_at = CASE WHEN j.value->>'s' = 'dead' THEN ${d.int("?")} ELSE NULL END,
             updated_at = ?
           FROM ${d.jsonRows}
           WHERE tasks.id = j.value->>'id' AND tasks.fencing_token = ${d.int("j.value->>'t'")} AND tasks.status = 'leased' RETURNING *`,
          [fx.now, fx.now, JSON.stringify(changes)]
        ),
        "leased"
      )
    }
    const due = yield* kindRows(
      sql,
      "SELECT DISTINCT kind FROM tasks WHERE status = 'queued' AND run_after > 0 AND run_after > ? AND run_after <= ?",
      [since, fx.now]
    )
    for (const d of due) fx.wakeKinds.add(d.kind)
  })

/** Hands back leases whose taker went away before receiving them: as if they were never leased. */
export const unlease = (sql: Sql, fx: BatchEffects, leases: ReadonlyArray<{ readonly taskId: TaskId; readonly fencingToken: number }>) =>
  Effect.map(
    taskRows(
      sql,
      `UPDATE tasks SET status = 'queued', worker_id = NULL, lease_expires_at = NULL, lease_ms = 0, attempts = attempts - 1, updated_at = ?
       FROM ${dialectOf(sql).jsonRows}
       WHERE tasks.id = j.value->>'id' AND tasks.fencing_token = ${dialectOf(sql).int("j.value->>'t'")} AND tasks.status = 'leased' RETURNING *`,
      [fx.now, JSON.stringify(leases.map((l) => ({ id: l.taskId, t: l.fencingToken })))]
    ),
    (rows) => fx.rows(rows, "leased").length
  )
