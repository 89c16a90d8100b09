import { Command } from "@effect/cli"
import { Console, Effect } from "effect"
import { clientOptions, CommandFailed, reportErrors, resolveHub, resolveToken } from "./ClientOptions.js"

/**
 * `kiris top`: a live dashboard of the hub (queue, workers, tasks, sessions) with actions. ink and
 * React are loaded only here, when the command runs.
 */

export const NOT_A_TERMINAL = "kiris top needs a terminal; use kiris stats / kiris tasks for scripts"

export const topCommand = Command.make("top", clientOptions, (o) =>
  Effect.gen(function* () {
    if (process.stdout.isTTY !== true || process.stdin.isTTY !== true) {
      yield* Console.error(NOT_A_TERMINAL)
      return yield* new CommandFailed()
    }
    const hub = yield* resolveHub(o)
    const token = yield* resolveToken(o).pipe(reportErrors(hub))
    const { runTop } = yield* Effect.promise(() => import("../top/TopRun.js"))
    yield* runTop({ hub, token })
  })
).pipe(Command.withDescription("A live dashboard of the hub: queue, workers, tasks and sessions, with cancel/retry/approve/drain (needs a terminal)"))
