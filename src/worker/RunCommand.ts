import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { formatMs, runProcess } from "../runtime/ProcessRunner.js"
import { TaskFailure } from "./TaskFailure.js"
import { outputTail, type TaskInput } from "./TaskInput.js"
import { WorkerConfig } from "./WorkerConfig.js"

/**
 * Runs a task's command with the worker's process rules and turns the outcome into a task result:
 * `{ exitCode, stdout, stderr, truncated }`, or a failure for a non-zero exit, a timeout or a
 * command that cannot start. The child sees KIRIS_TASK_ID and, when the task has dependencies,
 * KIRIS_INPUTS_FILE (their results as JSON).
 */

export interface CommandResult {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
  readonly truncated: boolean
}

export interface CommandSpec {
  readonly label: string
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string
  readonly stdin?: string
  readonly timeoutMs?: number | undefined
  /** Added to "cannot run" failures, e.g. which setting names the binary. */
  readonly hint?: string
}

/** Writes `data` as JSON to a private file for the task's command, removed when the run ends. */
const jsonFile = (input: TaskInput, suffix: string, data: unknown, empty: boolean) =>
  Effect.flatMap(WorkerConfig, (config) => {
    if (empty) return Effect.succeed(undefined)
    const file = path.join(config.dataDir, "inputs", `${input.taskId.replace(/[^A-Za-z0-9_.-]/g, "_")}${suffix}.json`)
    return Effect.acquireRelease(
      Effect.sync(() => {
        fs.mkdirSync(path.dirname(file), { recursive: true })
        fs.writeFileSync(file, JSON.stringify(data), { mode: 0o600 })
        return file
      }),
      () => Effect.sync(() => fs.rmSync(file, { force: true }))
    )
  })

/** `KIRIS_INPUTS_FILE` (results by task id) and `KIRIS_DEPENDENCIES_FILE` (the ordered list). */
const inputFiles = (input: TaskInput) =>
  Effect.all({
    inputs: jsonFile(input, "", input.inputs, Object.keys(input.inputs).length === 0),
    dependencies: jsonFile(input, ".dependencies", input.dependencies ?? [], (input.dependencies ?? []).length === 0)
  })

export const runCommand = (input: TaskInput, spec: CommandSpec): Effect.Effect<CommandResult, TaskFailure, WorkerConfig> =>
  Effect.scoped(
    Effect.gen(function* () {
      const config = yield* WorkerConfig
      const files = yield* inputFiles(input)
      const timeoutMs = spec.timeoutMs ?? config.taskTimeoutMs
      const result = yield* runProcess({
        command: spec.command,
        args: spec.args,
        cwd: spec.cwd,
        env: {
          ...config.childEnv,
          KIRIS_TASK_ID: input.taskId,
          ...(files.inputs === undefined ? {} : { KIRIS_INPUTS_FILE: files.inputs }),
          ...(files.dependencies === undefined ? {} : { KIRIS_DEPENDENCIES_FILE: files.dependencies })
        },
        timeoutMs,
        maxOutputBytes: config.maxOutputBytes,
        killGraceMs: config.killGraceMs,
        ...(spec.stdin === undefined ? {} : { stdin: spec.stdin })
      }).pipe(
        Effect.mapError((e) =>
          e.reason === "spawn"
            ? TaskFailure.permanent(`${e.message}${spec.hint === undefined ? "" : ` (${spec.hint})`}`)
            : TaskFailure.retryable(`${spec.label} ${e.message}${tailSuffix(e.stderr, e.stdout)}`)
        )
      )
      if (result.exitCode !== 0) {
        const how = result.exitCode === null ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`
        return yield* TaskFailure.retryable(`${spec.label} ${how} after ${formatMs(result.durationMs)}${tailSuffix(result.stderr, result.stdout)}`)
      }
      return { exitCode: 0, stdout: result.stdout, stderr: result.stderr, truncated: result.truncated }
    })
  )

const tailSuffix = (stderr: string, stdout: string) => {
  const tail = outputTail(stderr, stdout)
  return tail === "" ? "" : `: ${tail}`
}
