import { HttpLayerRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option, Redacted } from "effect"
import * as crypto from "node:crypto"
import { ServerConfig } from "../../config/ServerConfig.js"
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

/**
 * `/healthz` (the process answers), `/readyz` (the root database answers), `/metrics` (Prometheus;
 * open unless `metricsToken` is set, then only with `Authorization: Bearer <metricsToken>`).
 */
export const OpsRoutes = HttpLayerRouter.use((router) =>
  Effect.gen(function* () {
    const db = yield* RootDb
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
      db`SELECT 1 AS ok`.pipe(
        Effect.as(HttpServerResponse.text("ready")),
        Effect.catchAllCause((cause) => Effect.succeed(HttpServerResponse.text(`database unavailable: ${cause}`, { status: 503 })))
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
