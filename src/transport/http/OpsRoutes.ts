import { HttpLayerRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option, Redacted } from "effect"
import * as crypto from "node:crypto"
import { ServerConfig } from "../../config/ServerConfig.js"
import { RootDb } from "../../storage/RootDb.js"
import { Metrics } from "../metrics/Metrics.js"

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
      Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
        Option.isSome(metricsToken) && !bearerMatches(request.headers["authorization"], metricsToken.value)
          ? HttpServerResponse.text("missing or wrong metrics token", {
              status: 401,
              headers: { "www-authenticate": 'Bearer realm="metrics"' }
            })
          : HttpServerResponse.text(metrics.render(), { contentType: "text/plain; version=0.0.4" })
      )
    )
  })
)

