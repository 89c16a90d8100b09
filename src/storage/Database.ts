import * as Reactivity from "@effect/experimental/Reactivity"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { Cluster } from "../cluster/Cluster.js"
import { ServerConfig } from "../config/ServerConfig.js"
import { queueMigrations } from "./migrations/queue.js"
import { rootMigrations } from "./migrations/root.js"
import { makePgClient, migratePg } from "./Pg.js"
import { QueueDb } from "./QueueDb.js"
import { RootDb } from "./RootDb.js"

/** The migration history of the queue's tables on PostgreSQL (the root's keeps the default name). */
export const QUEUE_MIGRATIONS_TABLE = "kiris_queue_migrations"

/**
 * The hub's store, chosen by `databaseUrl`: unset, SQLite files in the data dir (`root.db`,
 * `queue.db`) and a hub alone; set, one PostgreSQL database shared with any other hub configured
 * the same way, whose root and queue tables live in the URL's default schema (migrated on start,
 * safely when several hubs start together) and whose signals travel by LISTEN/NOTIFY.
 */
export const DatabaseLive: Layer.Layer<RootDb | QueueDb | Cluster, never, ServerConfig | Reactivity.Reactivity> = Layer.unwrapEffect(
  Effect.map(ServerConfig, (config) =>
    Option.match(config.databaseUrl, {
      onNone: () => Layer.mergeAll(RootDb.layer, QueueDb.layer, Cluster.single),
      onSome: (url) => pgStore(url)
    })
  )
)

const pgStore = (url: Redacted.Redacted): Layer.Layer<RootDb | QueueDb | Cluster, never, Reactivity.Reactivity> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      yield* migratePg(Redacted.value(url), rootMigrations)
      yield* migratePg(Redacted.value(url), queueMigrations, QUEUE_MIGRATIONS_TABLE)
      const client = yield* makePgClient(Redacted.value(url))
      const cluster = yield* Cluster.pg(client, url)
      return Context.make(RootDb, client).pipe(Context.add(QueueDb, client), Context.add(Cluster, cluster))
    })
  ).pipe(Layer.orDie)
