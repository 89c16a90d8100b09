import { Clock, Effect, Schema } from "effect"
import { InvalidInput } from "../domain/Errors.js"
import { TaskId } from "../domain/Ids.js"
import { type Task, TaskKind, TaskStatus, terminalStatuses, Workdir } from "../domain/Task.js"
import { MapPolicy } from "../domain/rpc/TaskRpcs.js"
import {
  AnyProjectArg,
  describe,
  type Json,
  makeTool,
  type McpTool,
  object,
  ProjectArg,
  resolveProject,
  resolveProjectFilter,
  TimeoutArg,
  type ToolContext,
  type ToolHints,
  toJson,
  waitMs
} from "./McpTool.js"

/** The MCP tools over the swarm's task queue: submit, fan out, inspect, cancel and retry tasks; list workers. */

const taskJson = { type: "object", description: "A task: id, projectId, kind, payload, status, result, error, attempts, …" }
const taskOutput = object({ task: taskJson }, ["task"])
const tasksOutput = object({ tasks: { type: "array", items: taskJson } }, ["tasks"])

/** Waits (long-polling `task.wait`) until every task ended or the deadline passed, reporting progress. */
const waitForTasks = (ctx: ToolContext, ids: ReadonlyArray<TaskId>, timeoutMs: number) =>
  Effect.gen(function* () {
    const deadline = (yield* Clock.currentTimeMillis) + timeoutMs
    yield* ctx.progress(`waiting for ${ids.length === 1 ? ids[0] : `${ids.length} tasks`}`)
    for (;;) {
      const left = deadline - (yield* Clock.currentTimeMillis)
      const tasks = yield* ctx.client.task.wait({ taskIds: ids, timeoutMs: Math.max(0, Math.min(5000, left)) })
      const ended = tasks.filter((t) => terminalStatuses.includes(t.status)).length
      yield* ctx.progress(`${ended}/${tasks.length} ended; ${tasks.map((t) => `${t.id}:${t.status}`).join(" ")}`.slice(0, 500))
      if (ended === tasks.length || left <= 0) return { tasks, timedOut: ended !== tasks.length }
    }
  })

/** Fields of a payload from the convenience arguments: the text goes to `prompt` or `command`. */
const payloadOf = (
  kind: TaskKind,
  fields: {
    readonly prompt?: string | undefined
    readonly command?: string | undefined
    readonly payload?: unknown
    readonly workdir?: Workdir | undefined
  }
) =>
  Effect.gen(function* () {
    const base = fields.payload === undefined ? {} : fields.payload
    if (typeof base !== "object" || base === null || Array.isArray(base)) return yield* new InvalidInput({ reason: "payload must be a JSON object" })
    const out: Json = { ...(base as Json) }
    if (fields.prompt !== undefined) out["prompt"] = fields.prompt
    if (fields.command !== undefined) out["command"] = fields.command
    if (fields.workdir !== undefined) out["workdir"] = Schema.encodeSync(Workdir)(fields.workdir)
    if ((kind === "shell" || kind === "python") && typeof out["command"] !== "string") {
      return yield* new InvalidInput({ reason: `${kind} tasks need a command` })
    }
    if ((kind === "chat" || kind === "agent" || kind === "cli") && typeof out["prompt"] !== "string") {
      return yield* new InvalidInput({ reason: `${kind} tasks need a prompt` })
    }
    return out
  })

const TaskText = {
  prompt: Schema.optional(describe(Schema.String, "The prompt (chat, agent, cli, human tasks)")),
  command: Schema.optional(describe(Schema.String, "The command (shell: bash, python: a script)")),
  payload: Schema.optional(describe(Schema.Unknown, "Further payload fields as a JSON object (model, system, adapter, timeoutMs, …)")),
  workdir: Schema.optional(describe(Workdir, "Where the task runs on the worker: shared directory, isolated fresh directory, or a git worktree"))
}

const submitTask = makeTool({
  name: "submit_task",
  title: "Submit a task to the swarm",
  description:
    "Enqueue one task on the Kiris swarm (chat/agent/cli take a prompt, shell/python a command; noop for tests). " +
    "With wait=true, wait for it to end (progress is reported) and return its result.",
  input: Schema.Struct({
    project: ProjectArg,
    kind: describe(TaskKind, "What runs the task"),
    ...TaskText,
    priority: Schema.optional(describe(Schema.Number, "Higher runs first (default 0)")),
    idempotencyKey: Schema.optional(describe(Schema.String, "Enqueue at most once per key and project (the existing task is returned)")),
    maxAttempts: Schema.optional(describe(Schema.Number.pipe(Schema.positive()), "Attempts before the task is dead (default 3)")),
    wait: Schema.optional(describe(Schema.Boolean, "Wait for the task to end and return it (default false)")),
    timeoutSeconds: TimeoutArg
  }),
  output: object({ task: taskJson, timedOut: { type: "boolean" } }, ["task"]),
  annotations: { readOnlyHint: false, openWorldHint: true },
  run: (i, ctx) =>
    Effect.gen(function* () {
      const projectId = yield* resolveProject(ctx, i.project, true)
      const payload = yield* payloadOf(i.kind, i)
      const task = yield* ctx.client.task.enqueue({
        projectId,
        kind: i.kind,
        payload,
        priority: i.priority ?? 0,
        maxAttempts: i.maxAttempts ?? 3,
        dependsOn: [],
        concurrencyLimit: 1,
        ...(i.idempotencyKey === undefined ? {} : { idempotencyKey: i.idempotencyKey })
      })
      if (i.wait !== true) return { task: toJson(task) }
      const { tasks, timedOut } = yield* waitForTasks(ctx, [task.id], waitMs(i.timeoutSeconds))
      return { task: toJson(tasks[0] ?? task), timedOut }
    })
})

const ReducerArg = Schema.Struct({
  kind: Schema.optional(describe(TaskKind, "Kind of the reduce task (default: the map tasks' kind)")),
  ...TaskText
}).annotations({
  description: "The reduce task: it runs once the map tasks ended and receives their results (prompt: {results}; shell: $KIRIS_INPUTS_FILE)"
})

const fanOut = makeTool({
  name: "fan_out",
  title: "Fan a template out over items, then reduce",
  description:
    "Map-reduce on the swarm: one task per item (the template's {item} is replaced by the item; without a template each item is " +
    "the prompt/command, or a whole payload object) and an optional reducer task over their results. policy: fail-fast " +
    "(default), partial, or quorum:K. With wait=true, wait for the reducer (or every map task) to end.",
  input: Schema.Struct({
    project: ProjectArg,
    kind: describe(TaskKind, "What runs each map task"),
    items: describe(Schema.Array(Schema.Unknown).pipe(Schema.minItems(1), Schema.maxItems(10_000)), "The items: strings, or payload objects"),
    template: Schema.optional(describe(Schema.String, "Prompt or command with {item} placeholders")),
    payload: Schema.optional(describe(Schema.Unknown, "Further payload fields for every map task (model, timeoutMs, workdir, …)")),
    reducer: Schema.optional(ReducerArg),
    policy: Schema.optional(describe(MapPolicy, "fail-fast, partial, or quorum:K")),
    priority: Schema.optional(Schema.Number),
    maxAttempts: Schema.optional(Schema.Number.pipe(Schema.positive())),
    wait: Schema.optional(Schema.Boolean),
    timeoutSeconds: TimeoutArg
  }),
  output: object(
    { mapTasks: { type: "array", items: taskJson }, reduceTask: { anyOf: [taskJson, { type: "null" }] }, timedOut: { type: "boolean" } },
    ["mapTasks", "reduceTask"]
  ),
  annotations: { readOnlyHint: false, openWorldHint: true },
  run: (i, ctx) =>
    Effect.gen(function* () {
      const projectId = yield* resolveProject(ctx, i.project, true)
      const field = i.kind === "shell" || i.kind === "python" ? "command" : "prompt"
      const items = yield* Effect.forEach(i.items, (item) => {
        const text = typeof item === "string" ? item : JSON.stringify(item)
        if (i.template !== undefined) return payloadOf(i.kind, { payload: i.payload, [field]: i.template.replaceAll("{item}", text) })
        if (typeof item === "string") return payloadOf(i.kind, { payload: i.payload, [field]: item })
        return payloadOf(i.kind, { payload: { ...((i.payload ?? {}) as Json), ...(item as Json) } })
      })
      const reduceKind = i.reducer?.kind ?? i.kind
      const reduce = i.reducer === undefined ? undefined : yield* payloadOf(reduceKind, i.reducer)
      const result = yield* ctx.client.task.map({
        projectId,
        kind: i.kind,
        items,
        policy: i.policy ?? "fail-fast",
        ...(reduce === undefined ? {} : { reduce, reduceKind }),
        ...(i.priority === undefined ? {} : { priority: i.priority }),
        ...(i.maxAttempts === undefined ? {} : { maxAttempts: i.maxAttempts })
      })
      if (i.wait !== true) return { mapTasks: toJson(result.mapTasks), reduceTask: toJson(result.reduceTask) }
      const ids = result.reduceTask === null ? result.mapTasks.map((t) => t.id) : [result.reduceTask.id]
      const { timedOut } = yield* waitForTasks(ctx, ids, waitMs(i.timeoutSeconds))
      const all = yield* ctx.client.task.wait({
        taskIds: [...result.mapTasks.map((t) => t.id), ...(result.reduceTask === null ? [] : [result.reduceTask.id])],
        timeoutMs: 0
      })
      return {
        mapTasks: toJson(all.slice(0, result.mapTasks.length)),
        reduceTask: result.reduceTask === null ? null : toJson(all[result.mapTasks.length]),
        timedOut
      }
    })
})

const ById = Schema.Struct({ taskId: describe(TaskId, "Task id (task_…)") })

/** A tool that takes a task id, calls one task RPC with it and returns the task it answers. */
const taskByIdTool = (def: {
  readonly name: string
  readonly title: string
  readonly description: string
  readonly annotations: ToolHints
  readonly rpc: (ctx: ToolContext, taskId: TaskId) => Effect.Effect<Task, unknown>
}): McpTool =>
  makeTool({
    name: def.name,
    title: def.title,
    description: def.description,
    input: ById,
    output: taskOutput,
    annotations: def.annotations,
    run: (i, ctx) => Effect.map(def.rpc(ctx, i.taskId), (task) => ({ task: toJson(task) }))
  })

const getTask = taskByIdTool({
  name: "get_task",
  title: "Get a task",
  description: "A task's state, result or error, and its attempts.",
  annotations: { readOnlyHint: true },
  rpc: (ctx, taskId) => ctx.client.task.get({ taskId })
})

const listTasks = makeTool({
  name: "list_tasks",
  title: "List tasks",
  description: "Recent tasks, newest first, of one project or of every project the caller can see.",
  input: Schema.Struct({
    project: AnyProjectArg,
    status: Schema.optional(TaskStatus),
    kind: Schema.optional(TaskKind),
    limit: Schema.optional(Schema.Number.pipe(Schema.between(1, 1000)))
  }),
  output: tasksOutput,
  annotations: { readOnlyHint: true },
  run: (i, ctx) =>
    Effect.gen(function* () {
      const projectId = yield* resolveProjectFilter(ctx, i.project)
      const tasks = yield* ctx.client.task.list({
        ...(projectId === undefined ? {} : { projectId }),
        ...(i.status === undefined ? {} : { status: i.status }),
        ...(i.kind === undefined ? {} : { kind: i.kind }),
        limit: i.limit ?? 50
      })
      return { tasks: toJson(tasks) }
    })
})

const cancelTask = taskByIdTool({
  name: "cancel_task",
  title: "Cancel a task",
  description: "Cancel a task that has not ended (a running one is stopped on its worker).",
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true },
  rpc: (ctx, taskId) => ctx.client.task.cancel({ taskId })
})

const retryTask = taskByIdTool({
  name: "retry_task",
  title: "Retry a task",
  description: "Queue a failed, dead or cancelled task again.",
  annotations: { readOnlyHint: false },
  rpc: (ctx, taskId) => ctx.client.task.retry({ taskId })
})

const listWorkers = makeTool({
  name: "list_workers",
  title: "List workers",
  description: "The workers known to the hub: kinds they run, capacity, running tasks, connected or not.",
  input: Schema.Struct({}),
  output: object({ workers: { type: "array", items: { type: "object" } } }, ["workers"]),
  annotations: { readOnlyHint: true },
  run: (_, ctx) => Effect.map(ctx.client.task.workers(), (workers) => ({ workers: toJson(workers) }))
})

/** In the order `tools/list` shows them. */
export const McpTaskTools: ReadonlyArray<McpTool> = [submitTask, fanOut, getTask, listTasks, cancelTask, retryTask, listWorkers]
