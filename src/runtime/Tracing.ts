import { Clock, Effect, Exit, Layer, Option, Tracer } from "effect"

/**
 * OpenTelemetry tracing, off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. Spans made with `Effect.fn` / `Effect.withSpan`
 * become OTel spans, exported over OTLP/HTTP (JSON) by a batch processor that reads the standard
 * `OTEL_BSP_*` variables; `OTEL_SERVICE_NAME` names the service (default `kiris`) and the resource
 * carries `kiris.role` (serve, worker, up). When the variables are unset, the OTel SDK is not even
 * loaded: the imports below are dynamic.
 */

/** Effect's own tracer, whose spans go nowhere: the one in use when tracing is off. */
const nativeTracer = Effect.runSync(Effect.tracer)

/** Whether spans are being exported (an OTel tracer is installed); trace context is stored with tasks only then. */
export const tracingOn: Effect.Effect<boolean> = Effect.map(Effect.tracer, (tracer) => tracer !== nativeTracer)

/** The commands that run long enough to trace: the hub (`serve`, `up`) and the worker. */
const tracedCommands: ReadonlyArray<string> = ["serve", "worker", "up"]

/** The OTLP endpoint the environment names, if any (none when `OTEL_SDK_DISABLED=true`). */
export const otlpEndpoint = (env: NodeJS.ProcessEnv = process.env): string | undefined => {
  if (env["OTEL_SDK_DISABLED"]?.trim().toLowerCase() === "true") return undefined
  for (const name of ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]) {
    const value = env[name]?.trim()
    if (value !== undefined && value !== "") return value
  }
  return undefined
}

const exporterLayer = (role: string) =>
  Layer.unwrapEffect(
    Effect.promise(async () => {
      const [NodeSdk, { BatchSpanProcessor }, { OTLPTraceExporter }] = await Promise.all([
        import("@effect/opentelemetry/NodeSdk"),
        import("@opentelemetry/sdk-trace-base"),
        import("@opentelemetry/exporter-trace-otlp-http")
      ])
      const serviceName = process.env["OTEL_SERVICE_NAME"]?.trim() || "kiris"
      return NodeSdk.layer(() => ({
        resource: { serviceName, attributes: { "kiris.role": role, "process.pid": process.pid } },
        // the exporter reads the endpoint, headers and timeout from the OTEL_EXPORTER_OTLP_* variables
        spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter()),
        shutdownTimeout: "5 seconds"
      }))
    })
  ).pipe(Layer.discard)

/** The tracing layer for a command (`serve`, `worker`, `up`): empty unless an OTLP endpoint is configured. */
export const tracingLayer = (command: string | undefined): Layer.Layer<never> =>
  command !== undefined && tracedCommands.includes(command) && otlpEndpoint() !== undefined ? exporterLayer(command) : Layer.empty

// == W3C trace context, carried by a task from its enqueue to its worker

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** A span as a W3C `traceparent` value (`00-<trace id>-<span id>-<flags>`). */
export const toTraceparent = (span: Tracer.AnySpan): string => `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`

/** The span a `traceparent` value names, as a parent for spans of this process; none when malformed. */
export const fromTraceparent = (value: string | null | undefined): Option.Option<Tracer.ExternalSpan> => {
  const m = value == null ? null : TRACEPARENT.exec(value)
  if (m === null) return Option.none()
  return Option.some(Tracer.externalSpan({ traceId: m[1]!, spanId: m[2]!, sampled: (parseInt(m[3]!, 16) & 1) === 1 }))
}

/** The current span as a `traceparent`, when tracing is on and there is one (otherwise undefined). */
export const currentTraceparent: Effect.Effect<string | undefined> = Effect.flatMap(tracingOn, (on) =>
  on ? Effect.map(Effect.option(Effect.currentSpan), (s) => (Option.isSome(s) ? toTraceparent(s.value) : undefined)) : Effect.succeed(undefined)
)

/**
 * Runs `effect` in a span that continues the trace of `traceparent` (a span of another process);
 * without a valid one, `effect` runs as it is (no span).
 */
export const continueTrace =
  (traceparent: string | null | undefined, name: string, attributes: Record<string, unknown>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Option.match(fromTraceparent(traceparent), {
      onNone: () => effect,
      onSome: (parent) =>
        effect.pipe(
          Effect.onExit((exit) => Effect.annotateCurrentSpan("kiris.outcome", outcomeOf(exit))),
          Effect.withSpan(name, { parent, attributes, captureStackTrace: false, kind: "consumer" })
        )
    })

/**
 * A span already over (e.g. a lease, decided in one database write), under `traceparent`: returns
 * its own `traceparent`, so that what follows is its child; `undefined` without a valid parent.
 */
export const markSpan = (traceparent: string | null | undefined, name: string, attributes: Record<string, unknown>) =>
  Option.match(fromTraceparent(traceparent), {
    onNone: () => Effect.succeed<string | undefined>(undefined),
    onSome: (parent) =>
      Effect.gen(function* () {
        const span = yield* Effect.makeSpan(name, { parent, attributes, captureStackTrace: false, kind: "internal" })
        span.end(yield* Clock.currentTimeNanos, Exit.void)
        return toTraceparent(span)
      })
  })

/** How an RPC (or other unit of work) ended, for the `outcome` span attribute. */
export const outcomeOf = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "ok"
  const failure = exit.cause
  if (failure._tag === "Fail") {
    const error = failure.error
    return typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : "error"
  }
  return exit.cause._tag === "Interrupt" ? "interrupted" : "error"
}

// == model steps of an agent turn

/** The parts of the AI SDK's full stream that bound a model call (one per step). */
type StepPart =
  | { readonly type: "start-step" }
  | {
      readonly type: "finish-step"
      readonly finishReason?: string
      readonly usage?: { readonly inputTokens?: number | undefined; readonly outputTokens?: number | undefined }
    }
  | { readonly type: string }

/**
 * Follows a turn's stream parts and opens one `model.call` span per step (`start-step` …
 * `finish-step`), as a child of the current span. `close` ends a step the stream left open. Nothing
 * while tracing is off.
 */
export const makeStepSpans = (attributes: Record<string, unknown>) =>
  Effect.map(Effect.zip(tracingOn, Effect.option(Effect.currentSpan)), ([on, parent]) => {
    if (!on) return { onPart: (_: StepPart) => Effect.void, close: Effect.void } as const
    let open: Tracer.Span | undefined
    let steps = 0
    const end = (exit: Exit.Exit<void, unknown>) =>
      Effect.flatMap(Clock.currentTimeNanos, (now) =>
        Effect.sync(() => {
          open?.end(now, exit)
          open = undefined
        })
      )
    const onPart = (part: StepPart): Effect.Effect<void> => {
      if (part.type === "start-step") {
        return Effect.zipRight(
          open === undefined ? Effect.void : end(Exit.void),
          Effect.map(
            Effect.makeSpan("model.call", {
              attributes: { ...attributes, step: ++steps },
              kind: "client",
              captureStackTrace: false,
              ...(Option.isSome(parent) ? { parent: parent.value } : {})
            }),
            (span) => {
              open = span
            }
          )
        )
      }
      if (part.type === "finish-step" && open !== undefined) {
        const finish = part as Extract<StepPart, { type: "finish-step" }>
        if (finish.finishReason !== undefined) open.attribute("finishReason", finish.finishReason)
        if (finish.usage?.inputTokens !== undefined) open.attribute("usage.inputTokens", finish.usage.inputTokens)
        if (finish.usage?.outputTokens !== undefined) open.attribute("usage.outputTokens", finish.usage.outputTokens)
        return end(Exit.void)
      }
      return Effect.void
    }
    const close = Effect.suspend(() => (open === undefined ? Effect.void : end(Exit.fail("the model call did not finish"))))
    return { onPart, close } as const
  })

// == RPC spans

/**
 * Wraps one RPC (middleware and handler) in a server span named after its tag, with the transport
 * (a WebSocket connection's requests carry its upgrade headers; TCP ones do not) and, at the end, the
 * outcome. A `traceparent` header continues the caller's trace. Nothing is added while tracing is off.
 */
export const rpcSpan =
  (tag: string, headers: Readonly<Record<string, string | undefined>>) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.flatMap(tracingOn, (on) => {
      if (!on) return self
      const parent = fromTraceparent(headers["traceparent"])
      return self.pipe(
        Effect.onExit((exit) => Effect.annotateCurrentSpan("rpc.outcome", outcomeOf(exit))),
        Effect.withSpan(tag, {
          kind: "server",
          captureStackTrace: false,
          attributes: {
            "rpc.system": "kiris",
            "rpc.method": tag,
            "rpc.transport": headers["upgrade"]?.toLowerCase() === "websocket" ? "websocket" : "tcp"
          },
          // each call is a trace of its own, not a child of its WebSocket connection's HTTP request
          ...(Option.isSome(parent) ? { parent: parent.value } : { root: true })
        })
      )
    })
