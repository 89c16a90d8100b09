import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { DomainEvent } from "../domain/Event.js"
import type { ProjectId } from "../domain/Ids.js"
import type { ProjectDb } from "../storage/ProjectDb.js"
import { EventLog } from "./EventLog.js"

/** Where one project's log stands, and the lock that numbers, appends and delivers its events one batch at a time. */
export interface ProjectLog {
  readonly lock: Effect.Semaphore
  /** The newest seq (delivered; appended unless still `pending`); -1 until read from the log. */
  last: number
  /**
   * Streaming deltas numbered and delivered but not appended yet, oldest first: they reach the
   * log with the next locked section on the project (its next event, a replay starting, pruning,
   * or the bus's delta writer shortly after), so anything that reads the log sees them.
   */
  pending: Array<DomainEvent>
  /** Replays reading the log now: pruning waits for them. */
  replays: number
  /** A deleted project: its last events are delivered live, no longer logged (its database is gone). */
  deleted: boolean
}

/** Every project's log state, made on first use, and the way to run under a project's lock. */
export const makeProjectLogs = (dbs: ProjectDb) => {
  const logs = new Map<ProjectId, ProjectLog>()

  const of = (projectId: ProjectId): ProjectLog => {
    let log = logs.get(projectId)
    if (log === undefined) {
      log = { lock: Effect.unsafeMakeSemaphore(1), last: -1, pending: [], replays: 0, deleted: false }
      logs.set(projectId, log)
    }
    return log
  }

  /** Appends the project's pending deltas (under its lock, on its database). */
  const appendPending = (log: ProjectLog): Effect.Effect<void, never, SqlClient.SqlClient> =>
    Effect.suspend(() => {
      if (log.pending.length === 0) return Effect.void
      const batch = log.pending
      log.pending = []
      return EventLog.append(batch)
    })

  /**
   * Runs `effect` on the project's database in a transaction (joining the caller's when it is in
   * one on that database), holding the project's lock inside it: connection first, lock second,
   * for every caller, so the two never wait on each other in opposite orders. Pending deltas are
   * appended first, so the log is complete up to `last` for `effect`.
   */
  const locked = <A>(projectId: ProjectId, log: ProjectLog, effect: Effect.Effect<A, never, SqlClient.SqlClient>): Effect.Effect<A> =>
    dbs
      .withProject(projectId)(
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql.withTransaction(
            log.lock.withPermits(1)(
              Effect.zipRight(log.last < 0 ? Effect.map(EventLog.lastSeq, (last) => void (log.last = last)) : appendPending(log), effect)
            )
          )
        )
      )
      .pipe(Effect.orDie)

  /** Projects with pending deltas. */
  const withPending = (): Array<ProjectId> => [...logs].flatMap(([id, log]) => (log.pending.length > 0 && !log.deleted ? [id] : []))

  return { of, locked, withPending } as const
}

export type ProjectLogs = ReturnType<typeof makeProjectLogs>
