import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { DomainEvent } from "../domain/Event.js"
import type { ProjectId } from "../domain/Ids.js"
import type { ProjectDb } from "../storage/ProjectDb.js"
import { EventLog } from "./EventLog.js"
import { lockProjectEvents } from "./EventNotices.js"

/** Where one project's log stands, and the lock that numbers, appends and delivers its events one batch at a time. */
export interface ProjectLog {
  readonly lock: Effect.Semaphore
  /** The newest seq (delivered; appended unless still `pending`); -1 until read from the log. */
  last: number
  /**
   * Streaming deltas numbered and delivered but not appended yet, oldest first: they reach the
   * log with the next locked section on the project (its next event, a replay starting, pruning,
   * or the bus's delta writer shortly after), so anything that reads the log sees them. Always
   * empty when hubs share the log (PostgreSQL): there every event is appended as it is numbered.
   */
  pending: Array<DomainEvent>
  /** Replays reading the log now: pruning waits for them. */
  replays: number
  /** A deleted project: its last events are delivered live, no longer logged (its database is gone). */
  deleted: boolean
}

/** How the project logs reach the rest of the bus. */
export interface ProjectLogsOptions {
  /** The log is shared with other hubs (PostgreSQL): events they append are caught up and delivered here. */
  readonly shared: boolean
  /** Delivers events other hubs appended to this hub's subscribers (in seq order, under the project's lock). */
  readonly deliver: (events: ReadonlyArray<DomainEvent>) => void
  /** Whether any subscriber here may want the project's events (else a catch-up only moves `last`). */
  readonly interested: (projectId: ProjectId) => boolean
}

/** Events read per page when catching up with other hubs. */
const CATCH_UP_PAGE = 1000

/** Every project's log state, made on first use, and the way to run under a project's lock. */
export const makeProjectLogs = (dbs: ProjectDb, options: ProjectLogsOptions) => {
  const logs = new Map<ProjectId, ProjectLog>()

  const of = (projectId: ProjectId): ProjectLog => {
    let log = logs.get(projectId)
    if (log === undefined) {
      log = { lock: Effect.unsafeMakeSemaphore(1), last: -1, pending: [], replays: 0, deleted: false }
      logs.set(projectId, log)
    }
    return log
  }

  /** The project's log state if this hub holds one. */
  const get = (projectId: ProjectId): ProjectLog | undefined => logs.get(projectId)

  /** Appends the project's pending deltas (under its lock, on its database). */
  const appendPending = (log: ProjectLog): Effect.Effect<void, never, SqlClient.SqlClient> =>
    Effect.suspend(() => {
      if (log.pending.length === 0) return Effect.void
      const batch = log.pending
      log.pending = []
      return EventLog.append(batch)
    })

  /**
   * Shared log, under the project's lock: brings `last` up to the log's newest committed seq,
   * delivering (in order) what other hubs appended after it when anyone here may want it.
   * `exact` (the caller holds the project's advisory lock, so nothing is being appended elsewhere):
   * the log's newest seq is the truth even below `last` (a transaction that published rolled back).
   */
  const catchUp = (projectId: ProjectId, log: ProjectLog, exact: boolean): Effect.Effect<void, never, SqlClient.SqlClient> =>
    Effect.gen(function* () {
      const newest = yield* EventLog.lastSeq
      if (log.last < 0 || (exact && newest < log.last) || (newest > log.last && !options.interested(projectId))) {
        log.last = newest
        return
      }
      while (newest > log.last && !log.deleted) {
        const events = yield* EventLog.page(projectId, log.last, newest, CATCH_UP_PAGE)
        if (events.length === 0) {
          // Only pruned deltas in between.
          log.last = newest
          break
        }
        log.last = events[events.length - 1]!.seq
        if (events.some((e) => e.event._tag === "ProjectDeleted")) log.deleted = true
        options.deliver(events)
      }
    })

  /**
   * Runs `effect` on the project's database in a transaction (joining the caller's when it is in
   * one on that database), holding the project's lock inside it: connection first, lock second,
   * for every caller, so the two never wait on each other in opposite orders. Pending deltas are
   * appended first, so the log is complete up to `last` for `effect`.
   *
   * Shared log (PostgreSQL): the project's advisory lock comes between the two, held until the
   * transaction commits, so appends of every hub are numbered one after another and commit in seq
   * order (a committed seq means every lower one is committed); under it `last` first catches up
   * with what other hubs appended (delivered here before anything new is numbered).
   */
  const locked = <A>(projectId: ProjectId, log: ProjectLog, effect: Effect.Effect<A, never, SqlClient.SqlClient>): Effect.Effect<A> =>
    dbs
      .withProject(projectId)(
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql.withTransaction(
            options.shared
              ? Effect.zipRight(lockProjectEvents(projectId), log.lock.withPermits(1)(Effect.zipRight(catchUp(projectId, log, true), effect)))
              : log.lock.withPermits(1)(
                  Effect.zipRight(log.last < 0 ? Effect.map(EventLog.lastSeq, (last) => void (log.last = last)) : appendPending(log), effect)
                )
          )
        )
      )
      .pipe(Effect.orDie)

  /**
   * Runs `effect` under the project's lock with `last` up to date, without excluding appenders:
   * on a shared log it catches up with what other hubs committed (a reader needs no more, since
   * seqs commit in order); alone, it is `locked`.
   */
  const synced = <A>(projectId: ProjectId, log: ProjectLog, effect: Effect.Effect<A, never, SqlClient.SqlClient>): Effect.Effect<A> =>
    options.shared
      ? dbs
          .withProject(projectId)(
            // A transaction takes the connection before the lock, as `locked` does.
            Effect.flatMap(SqlClient.SqlClient, (sql) =>
              sql.withTransaction(log.lock.withPermits(1)(Effect.zipRight(catchUp(projectId, log, false), effect)))
            )
          )
          .pipe(Effect.orDie)
      : locked(projectId, log, effect)

  /** Projects with pending deltas. */
  const withPending = (): Array<ProjectId> => [...logs].flatMap(([id, log]) => (log.pending.length > 0 && !log.deleted ? [id] : []))

  return { of, get, locked, synced, withPending } as const
}

export type ProjectLogs = ReturnType<typeof makeProjectLogs>
