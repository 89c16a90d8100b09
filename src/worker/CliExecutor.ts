import { Effect } from "effect"
import { CliPayload } from "../domain/Task.js"
import { shellQuote } from "../runtime/ProcessRunner.js"
import { runCommand } from "./RunCommand.js"
import { untrustedMessage } from "./ShellExecutor.js"
import { TaskFailure } from "./TaskFailure.js"
import { decodePayload, promptWithInputs, type TaskInput } from "./TaskInput.js"
import { WorkerConfig, type WorkerConfigShape } from "./WorkerConfig.js"
import { withWorkdir, worktreeChanges } from "./Workdirs.js"

/**
 * `cli`: an LLM command-line agent run in the task's workdir. Adapters: `codex`, `kiro`, `claude`
 * (binaries overridable with KIRIS_CODEX_BIN, KIRIS_KIRO_BIN, KIRIS_CLAUDE_BIN) and `custom`, a
 * command template whose `{prompt}` becomes the shell-quoted prompt (arbitrary shell, so only with
 * --trust-shell). A prompt too long for one argument is passed as `-` and written to stdin.
 *
 * Each built-in adapter starts in the mode that lets it edit files in its workdir and nowhere else:
 * codex with its `workspace-write` sandbox, claude with `acceptEdits` (edits accepted, anything else
 * it would ask about refused, as nobody can answer), kiro trusting its tools. A task's `adapterArgs`
 * replace those mode flags; they can lift the sandbox or start other programs, so like `custom`
 * they run only with --trust-shell. The prompt always follows `--`, so it is never read as a flag.
 */

type Adapter = typeof CliPayload.Type.adapter
type BuiltIn = Exclude<Adapter, "custom">

const maxArgBytes = 100_000

/** The flags that set each built-in adapter's permission mode; `adapterArgs` replace them. */
export const defaultModeArgs: Record<BuiltIn, ReadonlyArray<string>> = {
  codex: ["--sandbox", "workspace-write"],
  kiro: ["--trust-all-tools"],
  claude: ["--permission-mode", "acceptEdits"]
}

const adapterCommand = (config: WorkerConfigShape, adapter: BuiltIn, modeArgs: ReadonlyArray<string>, prompt: string) => {
  const viaStdin = Buffer.byteLength(prompt) > maxArgBytes
  const arg = viaStdin ? "-" : prompt
  const stdin = viaStdin ? { stdin: prompt } : {}
  switch (adapter) {
    case "codex":
      return {
        command: config.bins.codex,
        args: ["exec", "--skip-git-repo-check", ...modeArgs, "--", arg],
        hint: "install codex or set KIRIS_CODEX_BIN",
        ...stdin
      }
    case "kiro":
      return {
        command: config.bins.kiro,
        args: ["chat", "--no-interactive", ...modeArgs, "--", arg],
        hint: "install kiro-cli or set KIRIS_KIRO_BIN",
        ...stdin
      }
    case "claude":
      return { command: config.bins.claude, args: ["-p", ...modeArgs, "--", arg], hint: "install claude or set KIRIS_CLAUDE_BIN", ...stdin }
  }
}

export const runCli = Effect.fn("CliExecutor.run")(function* (input: TaskInput) {
  const config = yield* WorkerConfig
  const payload = yield* decodePayload(CliPayload, input)
  const prompt = promptWithInputs(payload.prompt, input.inputs, input.dependencies)
  let spec: { command: string; args: ReadonlyArray<string>; hint?: string; stdin?: string }
  if (payload.adapter === "custom" && payload.adapterArgs !== undefined) {
    return yield* TaskFailure.permanent("adapterArgs apply to the codex, kiro and claude adapters; a custom template holds its own flags")
  }
  if (payload.adapter === "custom") {
    if (payload.template === undefined || !payload.template.includes("{prompt}")) {
      return yield* TaskFailure.permanent("the custom adapter needs a template containing {prompt}")
    }
    if (!config.trustShell) return yield* TaskFailure.permanent(untrustedMessage("custom cli"))
    spec = { command: config.bins.bash, args: ["-c", payload.template.replaceAll("{prompt}", shellQuote(prompt))] }
  } else {
    if (payload.adapterArgs !== undefined && !config.trustShell) {
      return yield* TaskFailure.permanent(untrustedMessage("cli (with adapterArgs)"))
    }
    spec = adapterCommand(config, payload.adapter, payload.adapterArgs ?? defaultModeArgs[payload.adapter], prompt)
  }
  const run = yield* withWorkdir(input.taskId, payload.workdir, (cwd) =>
    runCommand(input, { label: payload.adapter, cwd, timeoutMs: payload.timeoutMs, ...spec })
  )
  return { adapter: payload.adapter, ...run.value, ...worktreeChanges(run) }
})
