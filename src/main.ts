import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { cli } from "./cli/Cli.js"
import { FairScheduler } from "./runtime/FairScheduler.js"
import { tracingLayer } from "./runtime/Tracing.js"

cli(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  // OpenTelemetry for `serve`, `worker` and `up`, only when OTEL_EXPORTER_OTLP_ENDPOINT is set
  Effect.provide(tracingLayer(process.argv[2])),
  Effect.withScheduler(new FairScheduler()),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
