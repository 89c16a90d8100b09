import { Clock, Effect } from "effect"
import { Models } from "../llm/Models.js"
import { runAgent } from "./AgentExecutor.js"
import { runChat } from "./ChatExecutor.js"
import { runCli } from "./CliExecutor.js"
import { runShell } from "./ShellExecutor.js"
import { executableKinds } from "./ExecutableKinds.js"
import { TaskFailure } from "./TaskFailure.js"
import type { TaskInput } from "./TaskInput.js"
import { WorkerConfig } from "./WorkerConfig.js"

/** Runs one leased task by kind on this worker. Interrupting a run stops it (and kills its processes). */

export { executableKinds }

/** `noop`: the payload echoed, with when the worker received it (dispatch latency = receivedAt - createdAt). */
export const runNoop = (input: TaskInput) =>
  Effect.map(Clock.currentTimeMillis, (receivedAt) => ({ echo: input.payload, createdAt: input.createdAt, receivedAt }))

export class Executors extends Effect.Service<Executors>()("kiris/Executors", {
  effect: Effect.gen(function* () {
    const context = yield* Effect.context<Models | WorkerConfig>()
    const run = (input: TaskInput): Effect.Effect<unknown, TaskFailure> => {
      switch (input.kind) {
        case "agent":
          return Effect.provide(runAgent(input, input.progress ?? (() => Effect.void)), context)
        case "noop":
          return runNoop(input)
        case "chat":
          return Effect.provide(runChat(input), context)
        case "cli":
          return Effect.provide(runCli(input), context)
        case "shell":
        case "python":
          return Effect.provide(runShell(input, input.kind), context)
        default:
          return Effect.fail(TaskFailure.permanent(`this worker cannot run ${input.kind} tasks (it runs ${executableKinds.join(", ")})`))
      }
    }
    return { run, kinds: executableKinds } as const
  })
}) {}
