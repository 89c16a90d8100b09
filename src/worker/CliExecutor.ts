import { Effect } from "effect"
import { CliPayload } from "../domain/Task.js"
import { shellQuote } from "./Process.js"
import { runCommand } from "./RunCommand.js"
import { untrustedMessage } from "./ShellExecutor.js"
import { TaskFailure } from "./TaskFailure.js"
import { decodePayload, promptWithInputs, type TaskInput } from "./TaskInput.js"
import { WorkerConfig, type WorkerConfigShape } from "./WorkerConfig.js"
import { withWorkdir } from "./Workdirs.js"

/**
 * `cli`: an LLM command-line agent run in the task's workdir. Adapters: `codex`, `kiro`, `claude`
 * (binaries overridable with KIRIS_CODEX_BIN, KIRIS_KIRO_BIN, KIRIS_CLAUDE_BIN) and `custom`, a
 * command template whose `{prompt}` becomes the shell-quoted prompt (arbitrary shell, so only with
 * --trust-shell). A prompt too long for one argument is passed as `-` and written to stdin.
 */

type Adapter = typeof CliPayload.Type.adapter

const maxArgBytes = 100_000

const adapterCommand = (config: WorkerConfigShape, adapter: Exclude<Adapter, "custom">, prompt: string) => {
  const viaStdin = Buffer.byteLength(prompt) > maxArgBytes
  const arg = viaStdin ? "-" : prompt
  const stdin = viaStdin ? { stdin: prompt } : {}
  switch (adapter) {
    case "codex":
      return { command: config.bins.codex, args: ["exec", "--skip-git-repo-check", arg], hint: "install codex or set KIRIS_CODEX_BIN", ...stdin }
    case "kiro":
      return {
        command: config.bins.kiro,
        args: ["chat", "--no-interactive", "--trust-all-tools", arg],
        hint: "install kiro-cli or set KIRIS_KIRO_BIN",
        ...stdin
      }
    case "claude":
      return { command: config.bins.claude, args: ["-p", arg], hint: "install claude or set KIRIS_CLAUDE_BIN", ...stdin }
  }
}

export const runCli = Effect.fn("CliExecutor.run")(function* (input: TaskInput) {
  const config = yield* WorkerConfig
  const payload = yield* decodePayload(CliPayload, input)
  const prompt = promptWithInputs(payload.prompt, input.inputs)
  let spec: { command: string; args: ReadonlyArray<string>; hint?: string; stdin?: string }
  if (payload.adapter === "custom") {
    if (payload.template === undefined || !payload.template.includes("{prompt}")) {
      return yield* TaskFailure.permanent("the custom adapter needs a template containing {prompt}")
    }
    if (!config.trustShell) return yield* TaskFailure.permanent(untrustedMessage("custom cli"))
    spec = { command: config.bins.bash, args: ["-c", payload.template.replaceAll("{prompt}", shellQuote(prompt))] }
  } else {
    spec = adapterCommand(config, payload.adapter, prompt)
  }
  const run = yield* withWorkdir(input.taskId, payload.workdir, (cwd) =>
    runCommand(input, { label: payload.adapter, cwd, timeoutMs: payload.timeoutMs, ...spec })
  )
  return { adapter: payload.adapter, ...run.value, ...(run.diff === undefined ? {} : { diff: run.diff }) }
})
