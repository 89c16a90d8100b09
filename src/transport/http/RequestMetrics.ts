import { HttpLayerRouter, HttpServerError, HttpServerRequest } from "@effect/platform"
import { Effect, Exit, Option, Tracer } from "effect"
import { Metrics } from "../metrics/Metrics.js"

const ROUTE_ATTRIBUTE = "http.route"

/**
 * Counts every HTTP request in `kiris_http_requests_total{method,route,status}`. `route` is the
 * matched route pattern (`/api/projects/:projectId`), never the raw path, so label values stay a
 * bounded set; requests no route matched are `unmatched`. The router records the pattern as the
 * `http.route` attribute of the request's span, so this middleware reads it from there (creating a
 * span only when the server has not). A WebSocket upgrade is counted, as 101, when its connection ends.
 */
export const RequestMetrics = HttpLayerRouter.middleware(
  Effect.map(Metrics, (metrics) => (httpEffect) => {
    const observe = (span: Tracer.Span) =>
      httpEffect.pipe(
        Effect.withParentSpan(span),
        Effect.onExit((exit) =>
          Effect.gen(function* () {
            const request = yield* HttpServerRequest.HttpServerRequest
            const response = Exit.isSuccess(exit) ? exit.value : (yield* HttpServerError.causeResponse(exit.cause))[0]
            const upgraded = Exit.isSuccess(exit) && request.headers["upgrade"]?.toLowerCase() === "websocket"
            const route = span.attributes.get(ROUTE_ATTRIBUTE)
            metrics.inc("kiris_http_requests_total", {
              method: request.method,
              route: typeof route === "string" ? route : "unmatched",
              status: upgraded ? "101" : String(response.status)
            })
          })
        )
      )
    return Effect.flatMap(Effect.option(Effect.currentSpan), (current) =>
      Option.isSome(current) ? observe(current.value) : Effect.useSpan("http.server.request", { kind: "server" }, observe)
    )
  }),
  { global: true }
)
