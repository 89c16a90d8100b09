import { Args, Command, Options } from "@effect/cli"
import { Clock, Console, Effect, Option } from "effect"
import type { HubRpcClient } from "../client/HubClient.js"
import type { TaskId } from "../domain/Ids.js"
import { type Task, type TaskAttempt, TaskKind, TaskStatus, type WorkerInfo } from "../domain/Task.js"
import { CliError, clientOptions, output, outputOptions, withClient } from "./ClientOptions.js"
import {
  buildPayload,
  failureLine,
  parseAfter,
  payloadOptions,
  payloadSummary,
  projectOption,
  resolveProject,
  resultOutput,
  taskTable,
  waitForTasks
} from "./SwarmShared.js"
import { formatFields, formatJson, formatTable, formatTime } from "./Table.js"

/** The swarm queue from the command line: enqueue, list, inspect, wait for, cancel and retry tasks. */

export const enqueueKinds = ["chat", "cli", "shell", "python", "noop"] as const
/** `kiris enqueue` also makes human tasks: they wait in the inbox for someone to approve or reject them. */
const enqueueOneKinds = [...enqueueKinds, "human"] as const

/** A human task's payload: what is asked (`title`) and, optionally, more about it (`detail`). */
const humanPayload = (text: Option.Option<string>, title: Option.Option<string>, detail: Option.Option<string>) =>
  Effect.gen(function* () {
    const asked = Option.orElse(title, () => text).pipe(
      Option.map((t) => t.trim()),
      Option.filter((t) => t !== "")
    )
    if (Option.isNone(asked)) return yield* new CliError({ message: "a human task needs --title (what is asked)" })
    return { title: asked.value, ...(Option.isSome(detail) ? { detail: detail.value } : {}) }
  })

const taskIdArg = Args.text({ name: "task-id" }).pipe(
  Args.withDescription("Task id (tsk_…)"),
  Args.map((id) => id as TaskId)
)

const printResult = (task: Task) =>
  Effect.sync(() => {
    process.stdout.write(resultOutput(task))
    const stderr = (task.result as { stderr?: unknown } | null)?.stderr
    if (typeof stderr === "string" && stderr !== "") process.stderr.write(stderr)
  })

/** Says once, after a few seconds, when no connected worker can run a task that is still queued. */
const idleHint = (client: HubRpcClient, kind: TaskKind, since: number) => {
  let hinted = false
  return (tasks: ReadonlyArray<Task>) =>
    Effect.gen(function* () {
      if (hinted || (yield* Clock.currentTimeMillis) - since < 3000 || !tasks.some((t) => t.status === "queued")) return
      hinted = true
      const workers = yield* client.task.workers().pipe(Effect.orElseSucceed((): ReadonlyArray<WorkerInfo> => []))
      if (!workers.some((w) => w.connected && w.kinds.includes(kind))) {
        yield* Console.error(`waiting: no connected worker runs ${kind} tasks (start one with \`kiris worker\` or \`kiris up\`)`)
      }
    })
}

/** Waits for one task, prints its result, and fails with its error unless it is done. */
export const waitAndPrint = (client: HubRpcClient, task: Task, json: boolean) =>
  Effect.gen(function* () {
    const [ended] = yield* waitForTasks(client, [task.id], idleHint(client, task.kind, yield* Clock.currentTimeMillis))
    const final = ended ?? task
    if (json) yield* Console.log(formatJson(final))
    else if (final.status === "done") yield* printResult(final)
    if (final.status !== "done") return yield* new CliError({ message: failureLine(final) })
  })

const enqueue = Command.make(
  "enqueue",
  {
    ...clientOptions,
    ...outputOptions,
    ...payloadOptions,
    text: Args.text({ name: "prompt|command" }).pipe(
      Args.withDescription("The prompt (chat, cli) or command (shell, python); for a human task, its title when --title is not given"),
      Args.optional
    ),
    kind: Options.choice("kind", enqueueOneKinds).pipe(
      Options.withDescription("What runs it (human: nobody; it waits in `kiris inbox` for an approval)"),
      Options.withDefault("chat" as const)
    ),
    title: Options.text("title").pipe(Options.withDescription("--kind human: what is asked, in one line"), Options.optional),
    detail: Options.text("detail").pipe(Options.withDescription("--kind human: more about what is asked"), Options.optional),
    priority: Options.integer("priority").pipe(Options.withDescription("Higher runs first"), Options.withDefault(0)),
    after: Options.text("after").pipe(Options.withDescription("Not before: a delay (30s, 5m, 2h) or an ISO time"), Options.optional),
    dependsOn: Options.text("depends-on").pipe(Options.withDescription("Run after this task (repeatable)"), Options.repeated),
    idempotencyKey: Options.text("idempotency-key").pipe(
      Options.withDescription("Enqueue at most once per key and project (the existing task is returned)"),
      Options.optional
    ),
    maxAttempts: Options.integer("max-attempts").pipe(Options.withDescription("Attempts before the task is dead (default 3)"), Options.optional),
    concurrencyKey: Options.text("concurrency-key").pipe(
      Options.withDescription("Run at most --concurrency-limit tasks with this key at once in the project (e.g. one per repository)"),
      Options.optional
    ),
    concurrencyLimit: Options.integer("concurrency-limit").pipe(
      Options.withDescription("With --concurrency-key: how many tasks with that key may run at once (default 1)"),
      Options.optional
    ),
    project: projectOption,
    wait: Options.boolean("wait").pipe(Options.withDescription("Wait for the task and print its result; exit 1 if it does not succeed"))
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        if (Option.isSome(o.concurrencyLimit) && Option.isNone(o.concurrencyKey)) {
          return yield* new CliError({ message: "--concurrency-limit needs --concurrency-key" })
        }
        if (Option.isSome(o.concurrencyLimit) && o.concurrencyLimit.value < 1) {
          return yield* new CliError({ message: "--concurrency-limit must be at least 1" })
        }
        if (o.kind !== "human" && (Option.isSome(o.title) || Option.isSome(o.detail))) {
          return yield* new CliError({ message: "--title and --detail are for --kind human" })
        }
        if (o.kind !== "human" && Option.isNone(o.text)) {
          return yield* new CliError({ message: `a ${o.kind} task needs a ${o.kind === "shell" || o.kind === "python" ? "command" : "prompt"}` })
        }
        const projectId = yield* resolveProject(client, o.project)
        const payload =
          o.kind === "human"
            ? yield* humanPayload(o.text, o.title, o.detail)
            : yield* buildPayload(
                o.kind,
                Option.getOrElse(o.text, () => ""),
                o
              )
        const runAfter = Option.isSome(o.after) ? yield* parseAfter(o.after.value, yield* Clock.currentTimeMillis) : undefined
        const task = yield* client.task.enqueue({
          projectId,
          kind: o.kind,
          payload,
          priority: o.priority,
          dependsOn: o.dependsOn
            .flatMap((d) => d.split(","))
            .map((d) => d.trim() as TaskId)
            .filter((d) => d !== ""),
          maxAttempts: Option.getOrElse(o.maxAttempts, () => 3),
          ...(runAfter === undefined ? {} : { runAfter }),
          ...(Option.isSome(o.idempotencyKey) ? { idempotencyKey: o.idempotencyKey.value } : {}),
          ...(Option.isSome(o.concurrencyKey)
            ? { concurrencyKey: o.concurrencyKey.value, concurrencyLimit: Option.getOrElse(o.concurrencyLimit, () => 1) }
            : {})
        })
        if (o.wait) return yield* waitAndPrint(client, task, o.json)
        yield* output(o.json, task, () => task.id)
      })
    )
).pipe(Command.withDescription("Add a task to the swarm queue (prints its id, or with --wait its result)"))

const list = Command.make(
  "tasks",
  {
    ...clientOptions,
    ...outputOptions,
    status: Options.choice("status", TaskStatus.literals).pipe(Options.optional),
    kind: Options.choice("kind", TaskKind.literals).pipe(Options.optional),
    project: Options.text("project").pipe(Options.withDescription("Project name or id (default: every project you can see)"), Options.optional),
    limit: Options.integer("limit").pipe(Options.withDefault(50))
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const projectId = Option.isSome(o.project) ? yield* resolveProject(client, o.project, false) : undefined
        const tasks = yield* client.task.list({
          limit: o.limit,
          ...(projectId === undefined ? {} : { projectId }),
          ...(Option.isSome(o.status) ? { status: o.status.value } : {}),
          ...(Option.isSome(o.kind) ? { kind: o.kind.value } : {})
        })
        yield* output(o.json, tasks, () => (tasks.length === 0 ? "no tasks" : taskTable(tasks)))
      })
    )
).pipe(Command.withDescription("List tasks, newest first"))

/** What a task's `error` means for its status: the outcome of a task that did not succeed, or the previous attempt's error while it retries. */
const errorField = (t: Task): ReadonlyArray<readonly [string, string]> => {
  if (t.status === "failed" || t.status === "dead" || t.status === "cancelled") return [["error", t.error ?? "-"]]
  if (t.status !== "done" && t.error !== null) return [["last error", t.error]]
  return []
}

export const taskDetails = (t: Task) => {
  const failed = t.history.length
  const fields = formatFields([
    ["id", `${t.id} (#${t.seq})`],
    ["project", t.projectId],
    ["kind", t.kind],
    ["status", t.suspect ? `${t.status} (suspect: its lease expired on several workers)` : t.status],
    ["attempts", `${t.attempts}/${t.maxAttempts}${failed > 0 ? ` (${failed} without success, see --attempts)` : ""}`],
    ["priority", String(t.priority)],
    ["worker", t.workerId ?? "-"],
    ["depends on", t.dependsOn.length === 0 ? "-" : t.dependsOn.join(", ")],
    ["created", formatTime(t.createdAt)],
    ["started", formatTime(t.startedAt)],
    ["finished", formatTime(t.finishedAt)],
    ["task", payloadSummary(t.payload)],
    ...errorField(t)
  ])
  return t.result === null ? fields : `${fields}\n\n${resultOutput(t).trimEnd()}`
}

const formatSeconds = (ms: number | null): string => (ms === null ? "-" : new Date(ms).toISOString().slice(0, 19).replace("T", " "))

/** A task's attempts, oldest first: the unsuccessful ones from its history, then the running or successful one. */
export const attemptsTable = (t: Task): string => {
  const rows: Array<TaskAttempt | (Omit<TaskAttempt, "endedAt" | "outcome"> & { endedAt: number | null; outcome: "running" | "done" })> = [
    ...t.history
  ]
  if ((t.status === "leased" || t.status === "done") && t.attempts > 0) {
    const running = t.status === "leased"
    rows.push({
      attempt: t.attempts,
      workerId: t.workerId,
      startedAt: t.startedAt,
      endedAt: running ? null : t.finishedAt,
      outcome: running ? "running" : "done",
      error: null
    })
  }
  if (rows.length === 0) return "no attempts yet"
  return formatTable(rows, [
    { header: "attempt", value: (a) => String(a.attempt) },
    { header: "worker", value: (a) => a.workerId ?? "-" },
    { header: "started", value: (a) => formatSeconds(a.startedAt) },
    { header: "ended", value: (a) => formatSeconds(a.endedAt) },
    { header: "outcome", value: (a) => a.outcome },
    { header: "error", value: (a) => a.error ?? "-" }
  ])
}

const show = Command.make(
  "task",
  {
    ...clientOptions,
    ...outputOptions,
    taskId: taskIdArg,
    attempts: Options.boolean("attempts").pipe(Options.withDescription("List every attempt: worker, start, end, outcome and error"))
  },
  (o) =>
    withClient(o, (client) =>
      client.task
        .get({ taskId: o.taskId })
        .pipe(Effect.flatMap((t) => (o.attempts ? output(o.json, t.history, () => attemptsTable(t)) : output(o.json, t, () => taskDetails(t)))))
    )
).pipe(Command.withDescription("Show one task with its result or error (--attempts: its attempts)"))

const wait = Command.make(
  "wait",
  {
    ...clientOptions,
    ...outputOptions,
    taskIds: taskIdArg.pipe(Args.atLeast(1)),
    timeout: Options.integer("timeout").pipe(Options.withDescription("Give up after this many seconds"), Options.optional)
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const tasks = yield* waitForTasks(client, o.taskIds, undefined, Option.getOrUndefined(Option.map(o.timeout, (s) => s * 1000)))
        if (o.json) yield* Console.log(formatJson(tasks))
        else if (tasks.length === 1 && tasks[0]!.status === "done") yield* printResult(tasks[0]!)
        else yield* Console.log(taskTable(tasks))
        const bad = tasks.filter((t) => t.status !== "done")
        if (bad.length > 0) return yield* new CliError({ message: bad.map(failureLine).join("\n       ") })
      })
    )
).pipe(Command.withDescription("Wait until tasks end; exit 1 unless all succeeded"))

const cancel = Command.make("cancel", { ...clientOptions, ...outputOptions, taskId: taskIdArg }, (o) =>
  withClient(o, (client) => client.task.cancel({ taskId: o.taskId }).pipe(Effect.flatMap((t) => output(o.json, t, () => `${t.id} ${t.status}`))))
).pipe(Command.withDescription("Cancel a task (a running one is stopped on its worker)"))

const retry = Command.make("retry", { ...clientOptions, ...outputOptions, taskId: taskIdArg }, (o) =>
  withClient(o, (client) => client.task.retry({ taskId: o.taskId }).pipe(Effect.flatMap((t) => output(o.json, t, () => `${t.id} ${t.status}`))))
).pipe(Command.withDescription("Queue a failed, dead or cancelled task again"))

const stats = Command.make(
  "stats",
  { ...clientOptions, ...outputOptions, project: Options.text("project").pipe(Options.withDescription("Only this project"), Options.optional) },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const projectId = Option.isSome(o.project) ? yield* resolveProject(client, o.project, false) : undefined
        const s = yield* client.task.stats(projectId === undefined ? {} : { projectId })
        yield* output(o.json, s, () =>
          formatFields([
            ["waiting", String(s.waiting)],
            ["queued", String(s.queued)],
            ["input required", String(s.input_required)],
            ["running", String(s.leased)],
            ["done", String(s.done)],
            ["failed", String(s.failed)],
            ["dead", String(s.dead)],
            ["cancelled", String(s.cancelled)],
            ["workers", String(s.workers)]
          ])
        )
      })
    )
).pipe(Command.withDescription("Count tasks by status, and connected workers"))

export const taskCommands = [enqueue, list, show, wait, cancel, retry, stats] as const
