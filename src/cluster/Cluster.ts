import { Context, Effect, Layer, Option, Redacted, type Scope, Stream } from "effect"
import { CHANNELS, type ClusterChannel } from "./Channels.js"
import { makePgListener } from "./PgListener.js"
import { randomBytes } from "node:crypto"
import type { PgClient } from "@effect/sql-pg"

/**
 * The hubs sharing this hub's store, and the signals between them. On SQLite a hub is alone:
 * `notify` does nothing and `listen` never emits. On PostgreSQL every hub of the database hears
 * every `notify` (its own included) through `LISTEN`/`NOTIFY`; a payload is a reference (ids, a
 * seq), never a row, and stays under `MAX_PAYLOAD` bytes: receivers read the rows themselves.
 */
export interface ClusterShape {
  readonly backend: "sqlite" | "pg"
  /** This process, unique among the hubs of the store (fresh on every start). */
  readonly hubId: string
  /** The PostgreSQL URL the hub stores its data in (none on SQLite). */
  readonly databaseUrl: Option.Option<string>
  /** Sends `payload` to every hub listening on `channel` (delivered when the sending transaction, if any, commits). */
  readonly notify: (channel: ClusterChannel, payload: string) => Effect.Effect<void>
  /** Every payload sent on `channel` from now on, by any hub, this one included. */
  readonly listen: (channel: ClusterChannel) => Stream.Stream<string>
}

export type { ClusterChannel } from "./Channels.js"

/** NOTIFY refuses payloads of 8000 bytes or more; senders split references into chunks below this. */
export const MAX_PAYLOAD = 7000

export class Cluster extends Context.Tag("kiris/Cluster")<Cluster, ClusterShape>() {
  /** A hub alone on its SQLite files. */
  static readonly single: Layer.Layer<Cluster> = Layer.sync(Cluster, (): ClusterShape => ({
    backend: "sqlite",
    hubId: newHubId(),
    databaseUrl: Option.none(),
    notify: () => Effect.void,
    listen: () => Stream.never
  }))

  /** Hubs sharing the PostgreSQL database `client` is connected to; the LISTEN connection lives with the scope. */
  static readonly pg = (client: PgClient.PgClient, url: Redacted.Redacted): Effect.Effect<ClusterShape, never, Scope.Scope> =>
    Effect.map(makePgListener(Redacted.value(url), CHANNELS), (listener) => ({
      backend: "pg",
      hubId: newHubId(),
      databaseUrl: Option.some(Redacted.value(url)),
      notify: (channel, payload) =>
        // pg_notify, not `NOTIFY channel, $1`: NOTIFY takes no bound parameters.
        client`SELECT pg_notify(${channel}, ${payload})`.pipe(
          Effect.asVoid,
          Effect.catchAllCause((cause) => Effect.logWarning("NOTIFY failed", { channel, cause })),
          Effect.withTracerEnabled(false)
        ),
      listen: listener.listen
    }))
}

const newHubId = () => `hub-${randomBytes(6).toString("hex")}`

/** Splits `items` into comma-joined payloads each under `MAX_PAYLOAD` bytes (items are ids or short references). */
export const chunkPayloads = (prefix: string, items: ReadonlyArray<string>): Array<string> => {
  const out: Array<string> = []
  let current = prefix
  let count = 0
  for (const item of items) {
    if (count > 0 && current.length + 1 + item.length > MAX_PAYLOAD) {
      out.push(current)
      current = prefix
      count = 0
    }
    current += (count === 0 ? "" : ",") + item
    count++
  }
  if (count > 0) out.push(current)
  return out
}
