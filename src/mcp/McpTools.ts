import { Deferred, Effect, JSONSchema, Option, Queue, Schema, Stream } from "effect"
import type { HubRpcClient } from "../client/HubClient.js"
import { InvalidInput } from "../domain/Errors.js"
import { type ProjectId, SessionId, TaskId } from "../domain/Ids.js"
import { PromptMode, type SessionHistory } from "../domain/Session.js"
import { TaskKind, TaskStatus, terminalStatuses, Workdir } from "../domain/Task.js"
import { MapPolicy } from "../domain/rpc/TaskRpcs.js"

/**
 * The MCP tools of Kiris, shared by `kiris mcp` (stdio) and the hub's `/mcp` route. Each tool is a
 * thin client of the hub's RPC API, called with the MCP caller's own token: every role, scope and
 * execute check is the RPC's own. Inputs are Effect schemas (their JSON Schema is what `tools/list`
 * shows, and arguments are decoded with the same schema); results are JSON objects returned both as
 * `structuredContent` and as text.
 */

type Json = Record<string, unknown>

/** What a tool call may use besides its arguments. */
export interface ToolContext {
  readonly client: HubRpcClient
  /** Project name or id used when a call names none (`default` when unset). */
  readonly defaultProject: string | undefined
  /** Reports `notifications/progress` when the caller sent a progress token; a no-op otherwise. */
  readonly progress: (message: string) => Effect.Effect<void>
}

export interface ToolAnnotations {
  readonly readOnlyHint: boolean
  readonly destructiveHint: boolean
  readonly idempotentHint: boolean
  readonly openWorldHint: boolean
}

/** One tool, its input type erased. */
export interface McpTool {
  readonly name: string
  readonly title: string
  readonly description: string
  readonly inputSchema: Json
  readonly outputSchema: Json
  readonly annotations: ToolAnnotations
  readonly call: (args: unknown, ctx: ToolContext) => Effect.Effect<Json, unknown>
}

/** JSON Schema of an input schema, as MCP wants it (an object schema, without the `$schema` tag). */
export const jsonSchemaOf = (schema: Schema.Schema.AnyNoContext): Json => {
  const { $schema: _, ...rest } = JSONSchema.make(schema) as unknown as Json
  // An empty struct's schema is "any object or array"; MCP wants an object schema.
  return rest["type"] === "object" ? rest : { type: "object", properties: {}, additionalProperties: false }
}

const make = <I, IE>(def: {
  readonly name: string
  readonly title: string
  readonly description: string
  readonly input: Schema.Schema<I, IE>
  readonly output: Json
  readonly annotations: Partial<ToolAnnotations> & { readonly readOnlyHint: boolean }
  readonly run: (input: I, ctx: ToolContext) => Effect.Effect<Json, unknown>
}): McpTool => {
  const decode = Schema.decodeUnknown(def.input, { onExcessProperty: "error" })
  return {
    name: def.name,
    title: def.title,
    description: def.description,
    inputSchema: jsonSchemaOf(def.input as Schema.Schema.AnyNoContext),
    outputSchema: def.output,
    annotations: { destructiveHint: false, idempotentHint: def.annotations.readOnlyHint, openWorldHint: false, ...def.annotations },
    call: (args, ctx) =>
      decode(args ?? {}).pipe(
        Effect.mapError((e) => new InvalidInput({ reason: e.message })),
        Effect.flatMap((input) => def.run(input, ctx))
      )
  }
}

/** A plain JSON copy of a value the RPC client decoded (class instances become objects). */
export const toJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value ?? null))

const object = (properties: Json, required: ReadonlyArray<string>, description?: string): Json => ({
  type: "object",
  properties,
  required,
  ...(description === undefined ? {} : { description })
})
const taskJson = { type: "object", description: "A task: id, projectId, kind, payload, status, result, error, attempts, …" }
const taskOutput = object({ task: taskJson }, ["task"])
const tasksOutput = object({ tasks: { type: "array", items: taskJson } }, ["tasks"])

const describe = <A, I>(schema: Schema.Schema<A, I>, description: string): Schema.Schema<A, I> => schema.annotations({ description })

const ProjectArg = Schema.optional(describe(Schema.String, 'Project name or id (default: the server\'s default project, "default")'))
const TimeoutArg = Schema.optional(describe(Schema.Number.pipe(Schema.positive()), "Seconds to wait at most (default 600)"))

/** A project by id or name, as the caller sees it; `default` is created on first use when `create`. */
export const resolveProject = (ctx: ToolContext, given: string | undefined, create: boolean) =>
  Effect.gen(function* () {
    const wanted = given ?? ctx.defaultProject ?? "default"
    const projects = yield* ctx.client.project.list()
    const found = projects.find((p) => p.id === wanted) ?? projects.find((p) => p.name === wanted)
    if (found !== undefined) return found.id
    if (wanted === "default" && create) return (yield* ctx.client.project.create({ name: "default", description: "Tasks enqueued without a project" })).id
    return yield* new InvalidInput({ reason: `no project ${wanted} visible to this caller` })
  })

const waitMs = (seconds: number | undefined) => Math.round((seconds ?? 600) * 1000)

/** Waits (long-polling `task.wait`) until every task ended or the deadline passed, reporting progress. */
const waitForTasks = (ctx: ToolContext, ids: ReadonlyArray<TaskId>, timeoutMs: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    yield* ctx.progress(`waiting for ${ids.length === 1 ? ids[0] : `${ids.length} tasks`}`)
    for (;;) {
      const left = deadline - Date.now()
      const tasks = yield* ctx.client.task.wait({ taskIds: ids, timeoutMs: Math.max(0, Math.min(5000, left)) })
      const ended = tasks.filter((t) => terminalStatuses.includes(t.status)).length
      yield* ctx.progress(`${ended}/${tasks.length} ended; ${tasks.map((t) => `${t.id}:${t.status}`).join(" ")}`.slice(0, 500))
      if (ended === tasks.length || left <= 0) return { tasks, timedOut: ended !== tasks.length }
    }
  })

/** Fields of a payload from the convenience arguments: the text goes to `prompt` or `command`. */
const payloadOf = (kind: TaskKind, fields: { readonly prompt?: string | undefined; readonly command?: string | undefined; readonly payload?: unknown; readonly workdir?: Workdir | undefined }) =>
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

const submitTask = make({
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
}).annotations({ description: "The reduce task: it runs once the map tasks ended and receives their results (prompt: {results}; shell: $KIRIS_INPUTS_FILE)" })

const fanOut = make({
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
  output: object({ mapTasks: { type: "array", items: taskJson }, reduceTask: { anyOf: [taskJson, { type: "null" }] }, timedOut: { type: "boolean" } }, [
    "mapTasks",
    "reduceTask"
  ]),
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
      const all = yield* ctx.client.task.wait({ taskIds: [...result.mapTasks.map((t) => t.id), ...(result.reduceTask === null ? [] : [result.reduceTask.id])], timeoutMs: 0 })
      return {
        mapTasks: toJson(all.slice(0, result.mapTasks.length)),
        reduceTask: result.reduceTask === null ? null : toJson(all[result.mapTasks.length]),
        timedOut
      }
    })
})

const ById = Schema.Struct({ taskId: describe(TaskId, "Task id (task_…)") })

const getTask = make({
  name: "get_task",
  title: "Get a task",
  description: "A task's state, result or error, and its attempts.",
  input: ById,
  output: taskOutput,
  annotations: { readOnlyHint: true },
  run: (i, ctx) => Effect.map(ctx.client.task.get({ taskId: i.taskId }), (task) => ({ task: toJson(task) }))
})

const listTasks = make({
  name: "list_tasks",
  title: "List tasks",
  description: "Recent tasks, newest first, of one project or of every project the caller can see.",
  input: Schema.Struct({
    project: Schema.optional(describe(Schema.String, "Project name or id (default: every visible project)")),
    status: Schema.optional(TaskStatus),
    kind: Schema.optional(TaskKind),
    limit: Schema.optional(Schema.Number.pipe(Schema.between(1, 1000)))
  }),
  output: tasksOutput,
  annotations: { readOnlyHint: true },
  run: (i, ctx) =>
    Effect.gen(function* () {
      const projectId = i.project === undefined ? undefined : yield* resolveProject(ctx, i.project, false)
      const tasks = yield* ctx.client.task.list({
        ...(projectId === undefined ? {} : { projectId }),
        ...(i.status === undefined ? {} : { status: i.status }),
        ...(i.kind === undefined ? {} : { kind: i.kind }),
        limit: i.limit ?? 50
      })
      return { tasks: toJson(tasks) }
    })
})

const cancelTask = make({
  name: "cancel_task",
  title: "Cancel a task",
  description: "Cancel a task that has not ended (a running one is stopped on its worker).",
  input: ById,
  output: taskOutput,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true },
  run: (i, ctx) => Effect.map(ctx.client.task.cancel({ taskId: i.taskId }), (task) => ({ task: toJson(task) }))
})

const retryTask = make({
  name: "retry_task",
  title: "Retry a task",
  description: "Queue a failed, dead or cancelled task again.",
  input: ById,
  output: taskOutput,
  annotations: { readOnlyHint: false },
  run: (i, ctx) => Effect.map(ctx.client.task.retry({ taskId: i.taskId }), (task) => ({ task: toJson(task) }))
})

const listWorkers = make({
  name: "list_workers",
  title: "List workers",
  description: "The workers known to the hub: kinds they run, capacity, running tasks, connected or not.",
  input: Schema.Struct({}),
  output: object({ workers: { type: "array", items: { type: "object" } } }, ["workers"]),
  annotations: { readOnlyHint: true },
  run: (_, ctx) => Effect.map(ctx.client.task.workers(), (workers) => ({ workers: toJson(workers) }))
})

const sessionJson = { type: "object", description: "A session: id, projectId, title, agent, model, status, totals" }

const createSession = make({
  name: "create_session",
  title: "Create an agent session",
  description: "Start an agent session in a project (then send_prompt to it).",
  input: Schema.Struct({
    project: ProjectArg,
    title: Schema.optional(Schema.String.pipe(Schema.maxLength(200))),
    agent: Schema.optional(describe(Schema.String, "Agent name (default: the hub's default agent)")),
    model: Schema.optional(describe(Schema.String, "provider:model (default: the hub's model)"))
  }),
  output: object({ session: sessionJson }, ["session"]),
  annotations: { readOnlyHint: false },
  run: (i, ctx) =>
    Effect.gen(function* () {
      const projectId = yield* resolveProject(ctx, i.project, true)
      const session = yield* ctx.client.session.create({
        projectId,
        ...(i.title === undefined ? {} : { title: i.title }),
        ...(i.agent === undefined ? {} : { agent: i.agent }),
        ...(i.model === undefined ? {} : { model: i.model })
      })
      return { session: toJson(session) }
    })
})

/** The text of the assistant messages after the user message at `from`, once they have all ended. */
const answerAfter = (history: SessionHistory, userMessage: (m: SessionHistory["messages"][number]) => boolean) => {
  const at = history.messages.findIndex((m) => m.message.role === "user" && userMessage(m))
  if (at < 0 || history.session.status !== "idle") return Option.none()
  const replies = history.messages.slice(at + 1).filter((m) => m.message.role === "assistant")
  if (replies.length === 0 || replies.some((m) => m.message.status === "running")) return Option.none()
  const last = replies[replies.length - 1]!.message
  const text = replies
    .flatMap((m) => m.parts.flatMap((p) => (p.data._tag === "text" ? [p.data.text] : [])))
    .join("\n")
    .trim()
  return Option.some({ messageId: history.messages[at]!.message.id, status: last.status, error: last.error, text })
}

const sendPrompt = make({
  name: "send_prompt",
  title: "Prompt an agent session and wait for the answer",
  description:
    "Send a prompt to a session and wait for its turn to end (progress is reported while the agent works). " +
    "mode: queue (default: after a running turn), interrupt, reject, or steer.",
  input: Schema.Struct({
    project: ProjectArg,
    sessionId: SessionId,
    text: Schema.String.pipe(Schema.minLength(1)),
    mode: Schema.optional(PromptMode),
    timeoutSeconds: TimeoutArg
  }),
  output: object(
    {
      sessionId: { type: "string" },
      messageId: { type: "string" },
      status: { type: "string", description: "completed, error, cancelled, …" },
      text: { type: "string" },
      error: { type: ["string", "null"] }
    },
    ["sessionId", "status", "text"]
  ),
  annotations: { readOnlyHint: false, openWorldHint: true },
  run: (i, ctx) =>
    Effect.gen(function* () {
      const projectId = yield* resolveProject(ctx, i.project, false)
      const ready = yield* Deferred.make<void, unknown>()
      // Signalled on every idle status of the session (a queued prompt's turn follows the running one).
      const settled = yield* Queue.sliding<void>(1)
      yield* ctx.client.events.subscribe({ projectId }).pipe(
        Stream.runForEach((item) => {
          if (item._tag === "Ready") return Deferred.succeed(ready, undefined)
          if (item._tag === "Lagged") return Queue.offer(settled, undefined)
          if (item._tag !== "Event") return Effect.void
          const body = item.event.event
          if (body._tag === "SessionStatus" && body.sessionId === i.sessionId && body.status === "idle") return Queue.offer(settled, undefined)
          if (body._tag === "MessageUpdated" && body.message.sessionId === i.sessionId) return ctx.progress(`assistant message ${body.message.status}`)
          if (body._tag === "PartUpdated" && body.part.sessionId === i.sessionId) {
            const d = body.part.data
            return d._tag === "tool" ? ctx.progress(`tool ${d.tool} ${d.status}`) : Effect.void
          }
          return Effect.void
        }),
        Effect.tapError((e) => Deferred.fail(ready, e)),
        Effect.forkScoped
      )
      yield* Deferred.await(ready)
      const started = yield* ctx.client.session.prompt({ projectId, sessionId: i.sessionId, text: i.text, mode: i.mode ?? "queue" })
      const mine =
        started._tag === "Started"
          ? (m: SessionHistory["messages"][number]) => m.message.id === started.messageId
          : (m: SessionHistory["messages"][number]) => m.message.createdAt >= started.prompt.createdAt
      const deadline = Date.now() + waitMs(i.timeoutSeconds)
      for (;;) {
        const history = yield* ctx.client.session.get({ projectId, sessionId: i.sessionId })
        const answer = answerAfter(history, mine)
        if (Option.isSome(answer)) return { sessionId: i.sessionId, ...answer.value }
        const left = deadline - Date.now()
        if (left <= 0) return yield* new InvalidInput({ reason: `no answer within ${i.timeoutSeconds ?? 600} s; the turn goes on (see get_session)` })
        yield* Queue.take(settled).pipe(Effect.timeout(left), Effect.ignore)
      }
    }).pipe(Effect.scoped)
})

const getSession = make({
  name: "get_session",
  title: "Get a session's transcript",
  description: "A session's info and its messages (text, tool calls and their status).",
  input: Schema.Struct({ project: ProjectArg, sessionId: SessionId }),
  output: object({ session: sessionJson, messages: { type: "array", items: { type: "object" } } }, ["session", "messages"]),
  annotations: { readOnlyHint: true },
  run: (i, ctx) =>
    Effect.gen(function* () {
      const projectId = yield* resolveProject(ctx, i.project, false)
      const history = yield* ctx.client.session.get({ projectId, sessionId: i.sessionId })
      return { session: toJson(history.session), messages: toJson(history.messages) }
    })
})

const listInbox = make({
  name: "list_inbox",
  title: "List what waits for an answer",
  description:
    "The inbox: tool calls of agent sessions waiting for a permission answer, and human tasks waiting for approval " +
    "(only those the caller may answer). Answer them with `answer`.",
  input: Schema.Struct({
    project: Schema.optional(describe(Schema.String, "Project name or id (default: every visible project)"))
  }),
  output: object({ items: { type: "array", items: { type: "object", description: "id, kind (permission | human_task), projectId, title, detail, options" } } }, [
    "items"
  ]),
  annotations: { readOnlyHint: true },
  run: (i, ctx) =>
    Effect.gen(function* () {
      const projectId = i.project === undefined ? undefined : yield* resolveProject(ctx, i.project, false)
      const items = yield* ctx.client.inbox.list(projectId === undefined ? {} : { projectId })
      return { items: toJson(items) }
    })
})

const answer = make({
  name: "answer",
  title: "Answer an inbox item",
  description:
    "Approve or reject an item of list_inbox (a permission request or a human task). For a permission request, scope " +
    "`session` or `always` approves the same tool and subject for the rest of the session or as a project rule.",
  input: Schema.Struct({
    id: describe(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)), "The item's id, as list_inbox shows it"),
    answer: describe(Schema.Literal("approve", "reject"), "approve or reject"),
    scope: Schema.optional(describe(Schema.Literal("once", "session", "always"), "For an approved permission request (default once)")),
    note: Schema.optional(describe(Schema.String.pipe(Schema.maxLength(4096)), "Shown with the answer (a rejected agent is told it)")),
    project: Schema.optional(describe(Schema.String, "The item's project name or id, when known"))
  }),
  output: object({ item: { type: "object" } }, ["item"]),
  annotations: { readOnlyHint: false },
  run: (i, ctx) =>
    Effect.gen(function* () {
      const projectId = i.project === undefined ? undefined : yield* resolveProject(ctx, i.project, false)
      const item = yield* ctx.client.inbox.answer({
        id: i.id,
        answer: i.answer,
        ...(i.scope === undefined ? {} : { scope: i.scope }),
        ...(i.note === undefined ? {} : { note: i.note }),
        ...(projectId === undefined ? {} : { projectId })
      })
      return { item: toJson(item) }
    })
})

export const McpTools: ReadonlyArray<McpTool> = [
  submitTask,
  fanOut,
  getTask,
  listTasks,
  cancelTask,
  retryTask,
  listWorkers,
  createSession,
  sendPrompt,
  getSession,
  listInbox,
  answer
]

/** The session that holds a session id, among the projects the caller sees. */
export const findSession = (client: HubRpcClient, sessionId: SessionId) =>
  Effect.gen(function* () {
    const projects = yield* client.project.list()
    for (const p of projects) {
      const found = yield* Effect.option(client.session.get({ projectId: p.id as ProjectId, sessionId }))
      if (Option.isSome(found)) return found.value
    }
    return yield* new InvalidInput({ reason: `no session ${sessionId} visible to this caller` })
  })

/** A transcript as plain text: one block per message. */
export const transcriptText = (history: SessionHistory): string =>
  [
    `# ${history.session.title || history.session.id} (${history.session.model}, ${history.session.status})`,
    ...history.messages.map((m) => {
      const body = m.parts
        .map((p) =>
          p.data._tag === "text"
            ? p.data.text
            : p.data._tag === "tool"
              ? `[tool ${p.data.tool} ${p.data.status}]`
              : p.data._tag === "reasoning"
                ? `[reasoning] ${p.data.text}`
                : ""
        )
        .filter((s) => s !== "")
        .join("\n")
      return `## ${m.message.role} (${m.message.status})\n${body}`
    })
  ].join("\n\n")

/** One line for a failed call: the typed error's tag and reason. */
export const describeFailure = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "_tag" in error) {
    const e = error as { _tag: string; reason?: unknown; message?: unknown }
    const detail = typeof e.reason === "string" ? e.reason : typeof e.message === "string" ? e.message : ""
    return detail === "" ? e._tag : `${e._tag}: ${detail}`
  }
  return error instanceof Error ? error.message : String(error)
}
