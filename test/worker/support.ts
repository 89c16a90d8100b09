import { ConfigProvider, Duration, Effect, Layer } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { TaskKind } from "../../src/domain/Task.js"
import { Models } from "../../src/llm/Models.js"
import { Executors } from "../../src/worker/Executors.js"
import type { TaskInput } from "../../src/worker/TaskInput.js"
import { WorkerConfig, type WorkerOptions } from "../../src/worker/WorkerConfig.js"
import { tempDir as makeTempDir } from "../support/TempDir.js"
import { pollUntil } from "../support/Until.js"

export const fakeCli = fileURLToPath(new URL("../support/fake-cli.mjs", import.meta.url))

export const tempDir = (prefix = "kiris-worker-") => makeTempDir(prefix)

/** Executors over a fresh data dir, with model settings from `env` only (never the real environment). */
export const executorsLayer = (options: Partial<WorkerOptions> = {}, env: Record<string, string> = {}) =>
  Executors.Default.pipe(
    Layer.provideMerge(WorkerConfig.layer({ dataDir: tempDir(), childEnv: { ...process.env }, ...options })),
    Layer.provideMerge(Models.Default),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({ KIRIS_LLM_MAX_RETRIES: "0", ...env })))))
  )

let counter = 0
export const taskInput = (kind: TaskKind, payload: unknown, inputs: Record<string, unknown> = {}): TaskInput => ({
  taskId: `tsk_test${++counter}_${process.pid}`,
  kind,
  payload,
  inputs,
  createdAt: Date.now()
})

export const run = (input: TaskInput) => Effect.flatMap(Executors, (e) => e.run(input))

export const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Polls `check` every 20 ms until it holds, dying after `timeoutMs`. */
export const eventually = <A>(what: string, check: () => A | undefined | false, timeoutMs = 10_000) =>
  pollUntil(what, Effect.sync(check), { timeout: Duration.millis(timeoutMs) })

export const gitRepo = () => {
  const dir = tempDir("kiris-repo-")
  const git = (...args: Array<string>) => execFileSync("git", args, { cwd: dir, encoding: "utf8" })
  git("init", "-q", "-b", "main")
  git("config", "user.email", "test@example.com")
  git("config", "user.name", "test")
  fs.writeFileSync(path.join(dir, "README.md"), "hello\n")
  git("add", "-A")
  git("commit", "-q", "-m", "init")
  return { dir, git }
}
