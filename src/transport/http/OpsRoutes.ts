import { HttpLayerRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { SqlClient } from "@effect/sql"
import { Cause, Duration, Effect, Option, Redacted } from "effect"
import * as crypto from "node:crypto"
import { ServerConfig } from "../../config/ServerConfig.js"
import { QueueDb } from "../../storage/QueueDb.js"
import { RootDb } from "../../storage/RootDb.js"
import { EventBus } from "../../events/EventBus.js"
import { TaskQueue } from "../../queue/TaskQueue.js"
import { WorkerHub } from "../../queue/WorkerHub.js"
import * as K from "../metrics/KirisMetrics.js"
import { Metrics } from "../metrics/Metrics.js"
import { setTaskGauges } from "../metrics/QueueMetrics.js"

const digest = (s: string) => crypto.createHash("sha256").update(s).digest()

/**
 * Whether an `Authorization` header carries `Bearer <token>` for the expected token's digest.
 * Both sides are hashed first, so the comparison takes the same time whatever the given length.
 */
export const bearerMatches = (authorization: string | undefined, expected: Buffer): boolean => {
  const given = authorization?.match(/^Bearer\s+(\S+)\s*$/i)?.[1]
  return crypto.timingSafeEqual(digest(given ?? ""), expected) && given !== undefined
}

/** How long `/readyz` waits for a database to answer before calling it unavailable. */
export const READY_TIMEOUT = Duration.seconds(2)

/** The first line of the innermost message of a failure (a driver's `connect ECONNREFUSED …`, …). */
const reason = (e: unknown): string => {
  let best = String(e)
  for (let c = e, depth = 0; typeof c === "object" && c !== null && depth < 6; c = (c as { cause?: unknown }).cause, depth++) {
    const message = (c as { message?: unknown }).message
    if (typeof message === "string" && message !== "") best = message
  }
  return best.split("\n")[0]!.slice(0, 200)
}

/**
 * Whether the database reads one row of `table` within READY_TIMEOUT: undefined, or why not. (A
 * table, not `SELECT 1`: SQLite answers that without touching its file.)
 */
const probe = (name: string, sql: SqlClient.SqlClient, table: string) =>
  sql`SELECT 1 AS ok FROM ${sql(table)} LIMIT 1`.pipe(
    Effect.timeoutFail({ duration: READY_TIMEOUT, onTimeout: () => `no answer within ${Duration.format(READY_TIMEOUT)}` }),
    Effect.as(undefined),
    Effect.catchAllCause((cause) => Effect.succeed(`${name} database unavailable: ${reason(Cause.squash(cause))}`))
  )

/**
 * `/healthz` (the process answers), `/readyz` (the root and queue databases answer: a one-row read of
 * each, at once; 503 with the reasons otherwise), `/metrics` (Prometheus;
 * open unless `metricsToken` is set, then only with `Authorization: Bearer <metricsToken>`).
 */
export const OpsRoutes = HttpLayerRouter.use((router) =>
  Effect.gen(function* () {
    const db = yield* RootDb
    const queueDb = yield* QueueDb
    const probes = [probe("root", db, "users"), probe("queue", queueDb, "tasks")]
    const ready = Effect.map(Effect.all(probes, { concurrency: "unbounded" }), (reasons) => reasons.filter((r): r is string => r !== undefined))
    const metrics = yield* Metrics
    const config = yield* ServerConfig
    const queue = yield* TaskQueue
    const hub = yield* WorkerHub
    const bus = yield* EventBus
    /** The gauges read at scrape time (in memory, no query), then every metric as text. */
    const scrape = Effect.gen(function* () {
      setTaskGauges(yield* queue.countsByKind)
      const { slots, workers } = yield* hub.connectedSlots
      K.set(K.workersConnected, {}, workers)
      K.set(K.workerSlots, {}, slots)
      K.set(K.eventSubscribers, {}, yield* bus.subscriberCount)
      return metrics.render()
    })
    const metricsToken = Option.map(config.metricsToken, (t) => digest(Redacted.value(t)))
    yield* router.add("GET", "/healthz", HttpServerResponse.text("ok"))
    yield* router.add(
      "GET",
      "/readyz",
      Effect.map(ready, (problems) =>
        problems.length === 0 ? HttpServerResponse.text("ready") : HttpServerResponse.text(problems.join("; "), { status: 503 })
      )
    )
    yield* router.add(
      "GET",
      "/metrics",
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
        Option.isSome(metricsToken) && !bearerMatches(request.headers["authorization"], metricsToken.value)
          ? Effect.succeed(
              HttpServerResponse.text("missing or wrong metrics token", {
                status: 401,
                headers: { "www-authenticate": 'Bearer realm="metrics"' }
              })
            )
          : Effect.map(scrape, (text) => HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4" }))
      )
    )
  })
)
