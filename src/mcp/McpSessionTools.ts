import { Clock, Deferred, Effect, Option, Queue, Schema, Stream } from "effect"
import { InvalidInput } from "../domain/Errors.js"
import { SessionId } from "../domain/Ids.js"
import { PromptMode, type SessionHistory } from "../domain/Session.js"
import {
  AnyProjectArg,
  describe,
  makeTool,
  type McpTool,
  object,
  ProjectArg,
  resolveProject,
  resolveProjectFilter,
  TimeoutArg,
  toJson,
  waitMs
} from "./McpTool.js"

/** The MCP tools over agent sessions and the inbox: create and prompt sessions, read them, answer what waits. */

const sessionJson = { type: "object", description: "A session: id, projectId, title, agent, model, status, totals" }

const createSession = makeTool({
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

const sendPrompt = makeTool({
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
          if (body._tag === "MessageUpdated" && body.message.sessionId === i.sessionId)
            return ctx.progress(`assistant message ${body.message.status}`)
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
      const deadline = (yield* Clock.currentTimeMillis) + waitMs(i.timeoutSeconds)
      for (;;) {
        const history = yield* ctx.client.session.get({ projectId, sessionId: i.sessionId })
        const answer = answerAfter(history, mine)
        if (Option.isSome(answer)) return { sessionId: i.sessionId, ...answer.value }
        const left = deadline - (yield* Clock.currentTimeMillis)
        if (left <= 0) return yield* new InvalidInput({ reason: `no answer within ${i.timeoutSeconds ?? 600} s; the turn goes on (see get_session)` })
        yield* Queue.take(settled).pipe(Effect.timeout(left), Effect.ignore)
      }
    }).pipe(Effect.scoped)
})

const getSession = makeTool({
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

const listInbox = makeTool({
  name: "list_inbox",
  title: "List what waits for an answer",
  description:
    "The inbox: tool calls of agent sessions waiting for a permission answer, and human tasks waiting for approval " +
    "(only those the caller may answer). Answer them with `answer`.",
  input: Schema.Struct({ project: AnyProjectArg }),
  output: object(
    { items: { type: "array", items: { type: "object", description: "id, kind (permission | human_task), projectId, title, detail, options" } } },
    ["items"]
  ),
  annotations: { readOnlyHint: true },
  run: (i, ctx) =>
    Effect.gen(function* () {
      const projectId = yield* resolveProjectFilter(ctx, i.project)
      const items = yield* ctx.client.inbox.list(projectId === undefined ? {} : { projectId })
      return { items: toJson(items) }
    })
})

const answer = makeTool({
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
      const projectId = yield* resolveProjectFilter(ctx, i.project)
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

/** In the order `tools/list` shows them. */
export const McpSessionTools: ReadonlyArray<McpTool> = [createSession, sendPrompt, getSession, listInbox, answer]
