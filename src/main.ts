import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { cli } from "./cli/Cli.js"
import { FairScheduler } from "./runtime/FairScheduler.js"

cli(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  Effect.withScheduler(new FairScheduler()),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
