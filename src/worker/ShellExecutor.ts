import { Effect } from "effect"
import { ShellPayload } from "../domain/Task.js"
import { runCommand } from "./RunCommand.js"
import { TaskFailure } from "./TaskFailure.js"
import { decodePayload, type TaskInput } from "./TaskInput.js"
import { WorkerConfig } from "./WorkerConfig.js"
import { withWorkdir, worktreeChanges } from "./Workdirs.js"

/** `shell` (`bash -c`) and `python` (`python3 -c`): arbitrary code, run only by a worker started with --trust-shell. */

export const untrustedMessage = (kind: string) =>
  `refused: this worker was started without --trust-shell, so it does not run ${kind} tasks (restart it with \`kiris worker --trust-shell\` or \`kiris up --trust-shell\`)`

export const runShell = Effect.fn("ShellExecutor.run")(function* (input: TaskInput, language: "shell" | "python") {
  const config = yield* WorkerConfig
  if (!config.trustShell) return yield* TaskFailure.permanent(untrustedMessage(language))
  const payload = yield* decodePayload(ShellPayload, input)
  const command = language === "shell" ? config.bins.bash : config.bins.python
  const run = yield* withWorkdir(input.taskId, payload.workdir, (cwd) =>
    runCommand(input, {
      label: language === "shell" ? "command" : "python",
      command,
      args: ["-c", payload.command],
      cwd,
      timeoutMs: payload.timeoutMs,
      hint: language === "shell" ? "set KIRIS_BASH_BIN" : "install python3 or set KIRIS_PYTHON_BIN"
    })
  )
  return { ...run.value, ...worktreeChanges(run) }
})
