import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { ProjectId } from "../domain/Ids.js"

/**
 * What hubs sharing a PostgreSQL database tell each other about project events, on the
 * `kiris_events` channel: `<projectId>:<seq>` once a transaction appended events up to `seq` (sent
 * at its commit), with `:deleted` when the batch ended the project. A notice is only a hint: the
 * receiver reads the log after its own last seq, so a lost notice is made good by the next one.
 */
export interface EventNotice {
  readonly projectId: ProjectId
  readonly seq: number
  /** The batch held the project's `ProjectDeleted` (its database is dropped right after). */
  readonly deleted: boolean
}

export const EVENTS_CHANNEL = "kiris_events"

export const encodeNotice = (n: EventNotice): string => `${n.projectId}:${n.seq}${n.deleted ? ":deleted" : ""}`

/** The notice in `payload`, or undefined for a payload this hub does not understand. */
export const parseNotice = (payload: string): EventNotice | undefined => {
  const match = /^([^:]+):(\d+)(:deleted)?$/.exec(payload)
  if (match === null) return undefined
  const seq = Number(match[2])
  if (!Number.isSafeInteger(seq)) return undefined
  return { projectId: match[1] as ProjectId, seq, deleted: match[3] !== undefined }
}

/** Sends `notice` on the fiber's (PostgreSQL) client: inside a transaction, it goes out at commit. */
export const sendNotice = (notice: EventNotice) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT pg_notify(${EVENTS_CHANNEL}, ${encodeNotice(notice)})`).pipe(Effect.orDie, Effect.asVoid)

/** Advisory-lock namespace (the first of the two-int key) for the hub's cross-hub locks. */
export const LOCK_SPACE = 0x6b697269

/** Takes the project's event lock until the current transaction ends (PostgreSQL): one appender per project across hubs. */
export const lockProjectEvents = (projectId: ProjectId) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT pg_advisory_xact_lock(${LOCK_SPACE}, hashtext(${`events:${projectId}`}))`).pipe(
    Effect.orDie,
    Effect.asVoid
  )
