import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ErrorCode,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema
} from "@modelcontextprotocol/sdk/types.js"
import { Effect, Exit, FiberMap, Runtime, Scope } from "effect"
import type { HubRpcClient } from "../client/HubClient.js"
import type { ProjectId, SessionId, TaskId } from "../domain/Ids.js"
import { describeFailure, type ToolContext, toJson } from "./McpTool.js"
import { watchProject } from "./McpTaskWatch.js"
import { McpTools } from "./McpTools.js"
import { findSession, transcriptText } from "./McpTranscript.js"

/**
 * Builds the MCP server (the SDK's low-level `Server`) over a hub client: the tools of McpTools,
 * resources `kiris://tasks/{id}`, `kiris://sessions/{id}/transcript` and `kiris://workers`, and
 * `notifications/resources/updated` for subscribed task resources, driven by `events.subscribe`
 * (resumed from the last seen seq when that stream ends, see McpTaskWatch.ts).
 * Every hub call carries the client's token, so the hub checks each one as it checks any RPC.
 * The server lives for the caller's scope (subscriptions end with it).
 */

export const SERVER_NAME = "kiris"
export const SERVER_VERSION = "0.1.0"

export interface McpServerOptions {
  readonly client: HubRpcClient
  /** Project name or id used when a call names none. */
  readonly defaultProject?: string | undefined
  /** Where diagnostic lines go (e.g. resubscribing to a project's events); stderr by default (stdout is the protocol's over stdio). */
  readonly log?: ((line: string) => Effect.Effect<void>) | undefined
}

const instructions =
  "Kiris runs work on a swarm of workers and agent sessions. submit_task enqueues one task (wait=true waits for its result); " +
  "fan_out maps a template over items with an optional reducer; get_task/list_tasks/cancel_task/retry_task manage tasks; " +
  "create_session + send_prompt talk to an agent; list_inbox/answer handle requests waiting for a human. " +
  "Resources: kiris://tasks/{id}, kiris://sessions/{id}/transcript, kiris://workers."

const taskUri = /^kiris:\/\/tasks\/([^/?#]+)$/
const transcriptUri = /^kiris:\/\/sessions\/([^/?#]+)\/transcript$/

export const makeMcpServer = (options: McpServerOptions) =>
  Effect.gen(function* () {
    const { client } = options
    const runtime = yield* Effect.runtime<never>()
    const scope = yield* Effect.scope
    const run = <A, E>(effect: Effect.Effect<A, E>, signal?: AbortSignal) =>
      Runtime.runPromiseExit(runtime)(effect, signal === undefined ? {} : { signal })

    const server = new Server(
      { name: SERVER_NAME, version: SERVER_VERSION, title: "Kiris swarm hub" },
      { capabilities: { tools: {}, resources: { subscribe: true }, logging: {} }, instructions }
    )

    server.setRequestHandler(ListToolsRequestSchema, () => ({
      tools: McpTools.map((t) => ({
        name: t.name,
        title: t.title,
        description: t.description,
        inputSchema: t.inputSchema as { type: "object" },
        outputSchema: t.outputSchema as { type: "object" },
        annotations: { title: t.title, ...t.annotations }
      }))
    }))

    server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
      const tool = McpTools.find((t) => t.name === request.params.name)
      if (tool === undefined) throw new McpError(ErrorCode.InvalidParams, `unknown tool ${request.params.name}`)
      const token = request.params._meta?.progressToken
      let progress = 0
      const ctx: ToolContext = {
        client,
        defaultProject: options.defaultProject,
        progress: (message) =>
          token === undefined
            ? Effect.void
            : Effect.promise(() =>
                extra.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress: ++progress, message } })
              ).pipe(Effect.ignore)
      }
      const exit = await run(tool.call(request.params.arguments, ctx), extra.signal)
      if (Exit.isSuccess(exit)) {
        return { content: [{ type: "text", text: JSON.stringify(exit.value, null, 2) }], structuredContent: exit.value }
      }
      const failure =
        exit.cause._tag === "Fail"
          ? describeFailure(exit.cause.error)
          : `the call failed: ${describeFailure(exit.cause._tag === "Die" ? exit.cause.defect : exit.cause)}`
      return { content: [{ type: "text", text: failure }], isError: true }
    })

    server.setRequestHandler(ListResourcesRequestSchema, () => ({
      resources: [
        { uri: "kiris://workers", name: "workers", title: "Workers", description: "The workers known to the hub", mimeType: "application/json" }
      ]
    }))

    server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({
      resourceTemplates: [
        {
          uriTemplate: "kiris://tasks/{id}",
          name: "task",
          title: "Task",
          description: "A task's state and result (subscribe for updates)",
          mimeType: "application/json"
        },
        {
          uriTemplate: "kiris://sessions/{id}/transcript",
          name: "transcript",
          title: "Session transcript",
          description: "An agent session's messages as text",
          mimeType: "text/plain"
        }
      ]
    }))

    const read = (uri: string): Effect.Effect<{ readonly mimeType: string; readonly text: string }, unknown> => {
      if (uri === "kiris://workers")
        return Effect.map(client.task.workers(), (ws) => ({ mimeType: "application/json", text: JSON.stringify(toJson(ws), null, 2) }))
      const task = uri.match(taskUri)
      if (task !== null) {
        return Effect.map(client.task.get({ taskId: decodeURIComponent(task[1]!) as TaskId }), (t) => ({
          mimeType: "application/json",
          text: JSON.stringify(toJson(t), null, 2)
        }))
      }
      const transcript = uri.match(transcriptUri)
      if (transcript !== null) {
        return Effect.map(findSession(client, decodeURIComponent(transcript[1]!) as SessionId), (h) => ({
          mimeType: "text/plain",
          text: transcriptText(h)
        }))
      }
      return Effect.fail(new McpError(ErrorCode.InvalidParams, `unknown resource ${uri}`))
    }

    const failWith = (error: unknown): never => {
      if (error instanceof McpError) throw error
      const text = describeFailure(error)
      throw new McpError(text.startsWith("NotFound") ? -32002 : ErrorCode.InvalidRequest, text)
    }

    server.setRequestHandler(ReadResourceRequestSchema, async (request, extra) => {
      const exit = await run(read(request.params.uri), extra.signal)
      if (Exit.isFailure(exit)) return failWith(exit.cause._tag === "Fail" ? exit.cause.error : new Error("the read failed"))
      return { contents: [{ uri: request.params.uri, ...exit.value }] }
    })

    // Subscriptions: task URIs by task id; one events.subscribe stream per project with subscribed tasks.
    const subscribed = new Map<string, { readonly uri: string; readonly projectId: ProjectId }>()
    const watchers = yield* FiberMap.make<ProjectId>()
    const log = options.log ?? ((line: string) => Effect.sync(() => void process.stderr.write(`${line}\n`)))
    const watch = (projectId: ProjectId) =>
      watchProject(projectId, {
        client,
        uriOf: (taskId) => subscribed.get(taskId)?.uri,
        urisIn: (id) => [...subscribed.values()].filter((s) => s.projectId === id).map((s) => s.uri),
        notify: (uri) => Effect.promise(() => server.sendResourceUpdated({ uri }).catch(() => undefined)),
        log
      })

    server.setRequestHandler(SubscribeRequestSchema, async (request) => {
      const uri = request.params.uri
      const task = uri.match(taskUri)
      if (task === null) throw new McpError(ErrorCode.InvalidParams, `only task resources (kiris://tasks/{id}) can be subscribed to`)
      const exit = await run(
        Effect.gen(function* () {
          const t = yield* client.task.get({ taskId: decodeURIComponent(task[1]!) as TaskId })
          subscribed.set(t.id, { uri, projectId: t.projectId })
          if (!(yield* FiberMap.has(watchers, t.projectId))) yield* FiberMap.run(watchers, t.projectId, watch(t.projectId))
        })
      )
      if (Exit.isFailure(exit)) return failWith(exit.cause._tag === "Fail" ? exit.cause.error : new Error("the subscription failed"))
      return {}
    })

    server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
      const task = request.params.uri.match(taskUri)
      if (task === null) return {}
      const sub = subscribed.get(decodeURIComponent(task[1]!))
      subscribed.delete(decodeURIComponent(task[1]!))
      if (sub !== undefined && ![...subscribed.values()].some((s) => s.projectId === sub.projectId)) {
        await run(FiberMap.remove(watchers, sub.projectId))
      }
      return {}
    })

    yield* Scope.addFinalizer(
      scope,
      Effect.promise(() => server.close().catch(() => undefined))
    )
    return server
  })
