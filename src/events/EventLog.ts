import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { DomainEvent, EventBody } from "../domain/Event.js"
import type { ProjectId } from "../domain/Ids.js"

const encodeBody = Schema.encodeSync(EventBody)
const decodeBody = Schema.decodeUnknownSync(EventBody)

interface EventRow {
  readonly seq: number | string
  readonly at: number | string
  readonly body: string
}

/** What the log keeps; everything older goes (never the newest event: it carries the seq counter across restarts). */
export interface Retention {
  /** Events published before this time (ms) are pruned. */
  readonly before: number
  /** At most this many events are kept. */
  readonly keep: number
  /** Deltas of finished messages, and task progress, published before this time (ms) are dropped. */
  readonly deltasBefore: number
}

/**
 * A project's event log in its own database (the `events` table, see migration `6_events`): the
 * statements run on the fiber's `SqlClient`, so an append inside a transaction joins it. Seqs are
 * given by the caller (EventBus numbers events under the project's lock).
 */
export const EventLog = {
  /** The newest seq in the log, 0 when it is empty. */
  lastSeq: Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ seq: number | string | null }>`SELECT MAX(seq) AS seq FROM events`).pipe(
    Effect.map((rows) => Number(rows[0]?.seq ?? 0)),
    Effect.orDie
  ),

  /** The first seq still in the log as far as pruning goes: a resume from before `prunedBelow - 1` has lost events. */
  prunedBelow: Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ value: number | string }>`SELECT value FROM event_log_state WHERE name = 'pruned_below'`).pipe(
    Effect.map((rows) => Math.max(1, Number(rows[0]?.value ?? 1))),
    Effect.orDie
  ),

  append: (events: ReadonlyArray<DomainEvent>) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql`INSERT INTO events ${sql.insert(
        events.map((e) => ({
          seq: e.seq,
          at: e.at,
          kind: e.event._tag,
          message_id: e.event._tag === "PartDelta" ? e.event.messageId : null,
          body: JSON.stringify(encodeBody(e.event))
        }))
      )}`
    ).pipe(Effect.orDie, Effect.asVoid),

  /** Up to `limit` events with `after < seq <= upTo`, oldest first. */
  page: (projectId: ProjectId, after: number, upTo: number, limit: number) =>
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql<EventRow>`SELECT seq, at, body FROM events WHERE seq > ${after} AND seq <= ${upTo} ORDER BY seq LIMIT ${limit}`
    ).pipe(
      Effect.orDie,
      Effect.map((rows) =>
        rows.map((r) => DomainEvent.make({ seq: Number(r.seq), projectId, at: Number(r.at), event: decodeBody(JSON.parse(r.body)) }, true))
      )
    ),

  /**
   * Drops what `retention` no longer keeps and records the new `pruned_below`. Deltas go from the
   * middle of the log (their message's final state is in a later event), so a replay skips their
   * seqs; anything else goes only from the old end, so `pruned_below` says exactly what a resume lost.
   */
  prune: (retention: Retention) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const last = yield* EventLog.lastSeq
      if (last === 0) return 0
      const [young] = yield* sql<{ seq: number | string | null }>`SELECT MIN(seq) AS seq FROM events WHERE at >= ${retention.before}`
      const byAge = young?.seq === null || young?.seq === undefined ? last : Number(young.seq)
      const byCount = last - Math.max(1, retention.keep) + 1
      const below = Math.min(last, Math.max(byAge, byCount))
      const current = yield* EventLog.prunedBelow
      let dropped = 0
      if (below > current) {
        const gone = yield* sql`DELETE FROM events WHERE seq < ${below}`.raw
        dropped += changes(gone)
        yield* sql`INSERT INTO event_log_state (name, value) VALUES ('pruned_below', ${below})
          ON CONFLICT (name) DO UPDATE SET value = excluded.value`
      }
      const deltas = yield* sql`DELETE FROM events
        WHERE kind IN ('PartDelta', 'TaskProgress') AND at < ${retention.deltasBefore} AND seq < ${last}
          AND (message_id IS NULL OR message_id NOT IN (SELECT id FROM messages WHERE status = 'running'))`.raw
      dropped += changes(deltas)
      return dropped
    }).pipe(Effect.orDie)
}

/** Rows a DELETE removed, from the driver's raw result (SQLite: `changes`; PostgreSQL: `count`). */
const changes = (raw: unknown): number => {
  if (typeof raw === "object" && raw !== null) {
    const r = raw as { readonly changes?: unknown; readonly count?: unknown }
    if (typeof r.changes === "number") return r.changes
    if (typeof r.count === "number") return r.count
  }
  return 0
}
