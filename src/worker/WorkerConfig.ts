import { Config, Context, Effect, Layer } from "effect"
import * as path from "node:path"

/** What a worker process is allowed and configured to do, shared by its executors. */
export interface WorkerConfigShape {
  /** Holds `workdirs/<taskId>` (isolated dirs and worktrees) and per-task input files. */
  readonly dataDir: string
  /** Run `shell` and `python` tasks and `custom` CLI templates. */
  readonly trustShell: boolean
  /** Workdir of tasks that name none: a shared directory, or an isolated one per task when undefined. */
  readonly defaultWorkdir: string | undefined
  /** Per output stream (and per diff); beyond it the head and tail are kept. */
  readonly maxOutputBytes: number
  /** Timeout of cli/shell/python tasks that give none. */
  readonly taskTimeoutMs: number
  readonly killGraceMs: number
  readonly bins: {
    readonly codex: string
    readonly kiro: string
    readonly claude: string
    readonly bash: string
    readonly python: string
  }
  /** Environment of child processes (the worker's own, without its hub token). */
  readonly childEnv: Readonly<Record<string, string | undefined>>
}

export const WorkerBins = Config.all({
  codex: Config.string("KIRIS_CODEX_BIN").pipe(Config.withDefault("codex")),
  kiro: Config.string("KIRIS_KIRO_BIN").pipe(Config.withDefault("kiro-cli")),
  claude: Config.string("KIRIS_CLAUDE_BIN").pipe(Config.withDefault("claude")),
  bash: Config.string("KIRIS_BASH_BIN").pipe(Config.withDefault("bash")),
  python: Config.string("KIRIS_PYTHON_BIN").pipe(Config.withDefault("python3"))
})

export type WorkerOptions = Partial<Omit<WorkerConfigShape, "dataDir" | "bins">> & {
  readonly dataDir: string
  readonly bins?: Partial<WorkerConfigShape["bins"]>
}

export class WorkerConfig extends Context.Tag("kiris/WorkerConfig")<WorkerConfig, WorkerConfigShape>() {
  /** Defaults and the `KIRIS_*_BIN` settings, with the given options on top. */
  static readonly make = (options: WorkerOptions): Effect.Effect<WorkerConfigShape> =>
    Effect.map(Effect.orDie(WorkerBins), (bins) => ({
      trustShell: false,
      defaultWorkdir: undefined,
      maxOutputBytes: 256 * 1024,
      taskTimeoutMs: 30 * 60 * 1000,
      killGraceMs: 3000,
      childEnv: {},
      ...options,
      dataDir: path.resolve(options.dataDir),
      bins: { ...bins, ...options.bins }
    }))

  static readonly layer = (options: WorkerOptions) => Layer.effect(WorkerConfig, WorkerConfig.make(options))
}
