import { Options } from "@effect/cli"
import { Clock, Effect, Option } from "effect"
import * as path from "node:path"
import type { HubRpcClient } from "../client/HubClient.js"
import type { TaskId } from "../domain/Ids.js"
import { type Task, type TaskKind, terminalStatuses, type Workdir } from "../domain/Task.js"
import { resultText } from "../worker/TaskInput.js"
import { CliError } from "./ClientOptions.js"
import { formatTable, formatTime } from "./Table.js"

/** What the swarm commands share: the project to use, task payloads from flags, waiting, rendering. */

export const DEFAULT_PROJECT = "default"

/** A project by id or name; the `default` project is created on first use. */
export const resolveProject = (client: HubRpcClient, given: Option.Option<string>, create = true) =>
  Effect.gen(function* () {
    const wanted = Option.getOrElse(given, () => DEFAULT_PROJECT)
    const projects = yield* client.project.list()
    const found = projects.find((p) => p.id === wanted) ?? projects.find((p) => p.name === wanted)
    if (found !== undefined) return found.id
    if (wanted === DEFAULT_PROJECT && create) {
      const project = yield* client.project.create({ name: DEFAULT_PROJECT, description: "Tasks enqueued without --project" })
      return project.id
    }
    return yield* new CliError({ message: `no project ${wanted} (see \`kiris project list\`)` })
  })

export const projectOption = Options.text("project").pipe(
  Options.withDescription(`Project name or id (default: "${DEFAULT_PROJECT}", created on first use)`),
  Options.optional
)

/** `30s`, `5m`, `2h`, `1d`, `500ms` from now, or an ISO time, as epoch ms. */
export const parseAfter = (text: string, now: number): Effect.Effect<number, CliError> => {
  const m = text.trim().match(/^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/)
  if (m) {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "ms" | "s" | "m" | "h" | "d"]
    return Effect.succeed(Math.round(now + Number(m[1]) * unit))
  }
  const at = Date.parse(text)
  return Number.isNaN(at)
    ? Effect.fail(new CliError({ message: `--after ${text}: expected a delay like 30s, 5m, 2h or an ISO time` }))
    : Effect.succeed(at)
}

/** The options shaping a task's payload (the text is the prompt or command). */
export const payloadOptions = {
  model: Options.text("model").pipe(
    Options.withDescription("chat: provider:model, e.g. openai:gpt-4o-mini (default: the worker's KIRIS_MODEL)"),
    Options.optional
  ),
  system: Options.text("system").pipe(Options.withDescription("chat: system prompt"), Options.optional),
  adapter: Options.choice("adapter", ["codex", "kiro", "claude", "custom"] as const).pipe(
    Options.withDescription("cli: which CLI agent runs the prompt"),
    Options.withDefault("codex" as const)
  ),
  cliTemplate: Options.text("cli-template").pipe(Options.withDescription("cli --adapter custom: the command, with {prompt}"), Options.optional),
  timeout: Options.integer("timeout").pipe(Options.withDescription("cli/shell/python: seconds before the command is killed"), Options.optional),
  workdirShared: Options.text("workdir-shared").pipe(Options.withDescription("Run in this existing directory on the worker"), Options.optional),
  workdirIsolated: Options.boolean("workdir-isolated").pipe(Options.withDescription("Run in a fresh directory, removed afterwards")),
  workdirKeep: Options.boolean("workdir-keep").pipe(Options.withDescription("With --workdir-isolated: keep the directory")),
  workdirWorktree: Options.text("workdir-worktree").pipe(
    Options.withDescription("Run in a new git worktree of this repository; the result carries the diff"),
    Options.optional
  ),
  workdirRef: Options.text("workdir-ref").pipe(
    Options.withDescription("With --workdir-worktree: the ref to check out (default HEAD)"),
    Options.optional
  )
}

export interface PayloadFlags {
  readonly model: Option.Option<string>
  readonly system: Option.Option<string>
  readonly adapter: "codex" | "kiro" | "claude" | "custom"
  readonly cliTemplate: Option.Option<string>
  readonly timeout: Option.Option<number>
  readonly workdirShared: Option.Option<string>
  readonly workdirIsolated: boolean
  readonly workdirKeep: boolean
  readonly workdirWorktree: Option.Option<string>
  readonly workdirRef: Option.Option<string>
}

const workdirOf = (o: PayloadFlags): Effect.Effect<Workdir | undefined, CliError> => {
  const chosen = [Option.isSome(o.workdirShared), o.workdirIsolated, Option.isSome(o.workdirWorktree)].filter(Boolean).length
  if (chosen > 1) return Effect.fail(new CliError({ message: "give at most one of --workdir-shared, --workdir-isolated, --workdir-worktree" }))
  if (Option.isSome(o.workdirShared)) return Effect.succeed({ _tag: "shared", path: path.resolve(o.workdirShared.value) })
  if (Option.isSome(o.workdirWorktree)) {
    const ref = Option.getOrUndefined(o.workdirRef)
    return Effect.succeed({ _tag: "worktree", repo: path.resolve(o.workdirWorktree.value), ...(ref === undefined ? {} : { ref }) })
  }
  if (o.workdirIsolated) return Effect.succeed({ _tag: "isolated", keep: o.workdirKeep })
  return Effect.succeed(undefined)
}

const opt = <K extends string, A>(key: K, value: Option.Option<A>) => (Option.isSome(value) ? { [key]: value.value } : {}) as Partial<Record<K, A>>

/** The payload of a task of `kind` whose prompt (or command) is `text`. */
export const buildPayload = (kind: TaskKind, text: string, o: PayloadFlags) =>
  Effect.gen(function* () {
    const workdir = yield* workdirOf(o)
    const common = {
      ...(workdir === undefined ? {} : { workdir }),
      ...opt(
        "timeoutMs",
        Option.map(o.timeout, (s) => s * 1000)
      )
    }
    switch (kind) {
      case "chat":
        return { prompt: text, ...opt("model", o.model), ...opt("system", o.system), ...(workdir === undefined ? {} : { workdir }) }
      case "cli":
        if (o.adapter === "custom" && Option.isNone(o.cliTemplate)) {
          return yield* new CliError({ message: "--adapter custom needs --cli-template 'command … {prompt}'" })
        }
        return { prompt: text, adapter: o.adapter, ...opt("template", o.cliTemplate), ...common }
      case "shell":
      case "python":
        return { command: text, ...common }
      default:
        return { prompt: text, ...(workdir === undefined ? {} : { workdir }) }
    }
  })

export const isEnded = (t: Task) => terminalStatuses.includes(t.status)

/**
 * Waits until every task has ended, calling `onUpdate` with their states about once a second.
 * `timeoutMs` bounds the whole wait (the last states are returned then).
 */
export const waitForTasks = (
  client: HubRpcClient,
  taskIds: ReadonlyArray<TaskId>,
  onUpdate: (tasks: ReadonlyArray<Task>) => Effect.Effect<void> = () => Effect.void,
  timeoutMs?: number
) =>
  Effect.gen(function* () {
    const deadline = timeoutMs === undefined ? Infinity : (yield* Clock.currentTimeMillis) + timeoutMs
    for (;;) {
      const left = deadline - (yield* Clock.currentTimeMillis)
      const tasks = yield* client.task.wait({ taskIds, timeoutMs: Math.max(0, Math.min(1000, left)) })
      yield* onUpdate(tasks)
      if (tasks.every(isEnded) || (yield* Clock.currentTimeMillis) >= deadline) return tasks
    }
  })

const ellipsis = (s: string, max: number) => {
  const line = s.replace(/\s+/g, " ").trim()
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`
}

export const payloadSummary = (payload: unknown): string => {
  if (typeof payload !== "object" || payload === null) return JSON.stringify(payload) ?? ""
  const p = payload as { prompt?: unknown; command?: unknown }
  if (typeof p.command === "string") return p.command
  if (typeof p.prompt === "string") return p.prompt
  return JSON.stringify(payload)
}

export const taskTable = (tasks: ReadonlyArray<Task>) =>
  formatTable(tasks, [
    { header: "id", value: (t) => t.id },
    { header: "kind", value: (t) => t.kind },
    { header: "status", value: (t) => t.status },
    { header: "tries", value: (t) => `${t.attempts}/${t.maxAttempts}` },
    { header: "created", value: (t) => formatTime(t.createdAt) },
    {
      header: "task",
      value: (t) => ellipsis(t.error !== null && t.status !== "done" ? `${payloadSummary(t.payload)} — ${t.error}` : payloadSummary(t.payload), 70)
    }
  ])

/** The result as a user reads it: chat text, command stdout, else JSON; ends with a newline. */
export const resultOutput = (task: Task) => {
  const text = task.kind === "noop" ? JSON.stringify(task.result) : resultText(task.result)
  return text.endsWith("\n") || text === "" ? text : `${text}\n`
}

export const failureLine = (task: Task) =>
  `task ${task.id} ${task.status === "dead" ? "failed (no attempts left)" : task.status}${task.error === null ? "" : `: ${task.error}`}`
