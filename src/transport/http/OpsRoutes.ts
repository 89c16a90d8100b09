import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { RootDb } from "../../storage/RootDb.js"
import { Metrics } from "../metrics/Metrics.js"

/** `/healthz` (the process answers), `/readyz` (the root database answers), `/metrics` (Prometheus). */
export const OpsRoutes = HttpLayerRouter.use((router) =>
  Effect.gen(function* () {
    const db = yield* RootDb
    const metrics = yield* Metrics
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
      Effect.sync(() => HttpServerResponse.text(metrics.render(), { contentType: "text/plain; version=0.0.4" }))
    )
  })
)

