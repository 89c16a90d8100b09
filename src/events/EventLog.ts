import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { DomainEvent, EventBody } from "../domain/Event.js"
import type { ProjectId } from "../domain/Ids.js"
import { decodedOrDie, Int, NullableInt, withSql } from "../storage/Rows.js"

const encodeBody = Schema.encodeSync(EventBody)

const EventRow = Schema.Struct({ seq: Int, at: Int, body: Schema.parseJson(EventBody) })
const SeqRow = Schema.Struct({ seq: NullableInt })

const lastSeq = SqlSchema.single({
  Request: Schema.Void,
  Result: SeqRow,
  execute: () => withSql((sql) => sql`SELECT MAX(seq) AS seq FROM events`)
})
const prunedBelow = SqlSchema.findOne({
  Request: Schema.Void,
  Result: Schema.Struct({ value: Int }),
  execute: () => withSql((sql) => sql`SELECT value FROM event_log_state WHERE name = 'pruned_below'`)
})
const page = SqlSchema.findAll({
  Request: Schema.Struct({ after: Schema.Number, upTo: Schema.Number, limit: Schema.Number }),
  Result: EventRow,
  execute: (r) => withSql((sql) => sql`SELECT seq, at, body FROM events WHERE seq > ${r.after} AND seq <= ${r.upTo} ORDER BY seq LIMIT ${r.limit}`)
})
const firstSince = SqlSchema.single({
  Request: Schema.Number,
  Result: SeqRow,
  execute: (before) => withSql((sql) => sql`SELECT MIN(seq) AS seq FROM events WHERE at >= ${before}`)
})

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
  lastSeq: lastSeq(undefined).pipe(
    decodedOrDie("events newest seq"),
    Effect.map((r) => r.seq ?? 0)
  ),

  /** The first seq still in the log as far as pruning goes: a resume from before `prunedBelow - 1` has lost events. */
  prunedBelow: prunedBelow(undefined).pipe(
    decodedOrDie("event_log_state pruned_below"),
    Effect.map((r) => Math.max(1, Option.isSome(r) ? r.value.value : 1))
  ),

  append: (events: ReadonlyArray<DomainEvent>) =>
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) =>
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
    page({ after, upTo, limit }).pipe(
      decodedOrDie("events page"),
      Effect.map((rows) => rows.map((r) => DomainEvent.make({ seq: r.seq, projectId, at: r.at, event: r.body }, true)))
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
      const young = yield* firstSince(retention.before).pipe(decodedOrDie("events first seq since a time"))
      const byAge = young.seq ?? last
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

/** Rows a DELETE removed, from the driver's raw result (SQLite: `changes`; PostgreSQL: `rowCount`). */
const changes = (raw: unknown): number => {
  if (typeof raw === "object" && raw !== null) {
    const r = raw as { readonly changes?: unknown; readonly rowCount?: unknown; readonly count?: unknown }
    if (typeof r.changes === "number") return r.changes
    if (typeof r.rowCount === "number") return r.rowCount
    if (typeof r.count === "number") return r.count
  }
  return 0
}
