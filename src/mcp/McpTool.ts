import { Effect, JSONSchema, Schema } from "effect"
import type { HubRpcClient } from "../client/HubClient.js"
import { InvalidInput } from "../domain/Errors.js"

/**
 * What an MCP tool of Kiris is and how one is defined. Each tool is a thin client of the hub's RPC
 * API, called with the MCP caller's own token: every role, scope and execute check is the RPC's own.
 * Inputs are Effect schemas (their JSON Schema is what `tools/list` shows, and arguments are decoded
 * with the same schema); results are JSON objects returned both as `structuredContent` and as text.
 */

export type Json = Record<string, unknown>

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

/** Annotations as a tool states them: unstated hints default from `readOnlyHint` (see `makeTool`). */
export type ToolHints = Partial<ToolAnnotations> & { readonly readOnlyHint: boolean }

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

/** A tool from its input schema (excess properties are rejected) and what it runs on decoded input. */
export const makeTool = <I, IE>(def: {
  readonly name: string
  readonly title: string
  readonly description: string
  readonly input: Schema.Schema<I, IE>
  readonly output: Json
  readonly annotations: ToolHints
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

/** An output JSON Schema: an object with these properties. */
export const object = (properties: Json, required: ReadonlyArray<string>, description?: string): Json => ({
  type: "object",
  properties,
  required,
  ...(description === undefined ? {} : { description })
})

export const describe = <A, I>(schema: Schema.Schema<A, I>, description: string): Schema.Schema<A, I> => schema.annotations({ description })

export const ProjectArg = Schema.optional(describe(Schema.String, 'Project name or id (default: the server\'s default project, "default")'))
/** A project filter: without it, a call spans every project the caller sees. */
export const AnyProjectArg = Schema.optional(describe(Schema.String, "Project name or id (default: every visible project)"))
export const TimeoutArg = Schema.optional(describe(Schema.Number.pipe(Schema.positive()), "Seconds to wait at most (default 600)"))

/** Milliseconds of a `timeoutSeconds` argument (600 s when unset). */
export const waitMs = (seconds: number | undefined) => Math.round((seconds ?? 600) * 1000)

/** A project by id or name, as the caller sees it; `default` is created on first use when `create`. */
export const resolveProject = (ctx: ToolContext, given: string | undefined, create: boolean) =>
  Effect.gen(function* () {
    const wanted = given ?? ctx.defaultProject ?? "default"
    const projects = yield* ctx.client.project.list()
    const found = projects.find((p) => p.id === wanted) ?? projects.find((p) => p.name === wanted)
    if (found !== undefined) return found.id
    if (wanted === "default" && create)
      return (yield* ctx.client.project.create({ name: "default", description: "Tasks enqueued without a project" })).id
    return yield* new InvalidInput({ reason: `no project ${wanted} visible to this caller` })
  })

/** The project a filter names, or undefined (every visible project) when it names none. */
export const resolveProjectFilter = (ctx: ToolContext, given: string | undefined) =>
  given === undefined ? Effect.succeed(undefined) : resolveProject(ctx, given, false)

/** One line for a failed call: the typed error's tag and reason. */
export const describeFailure = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "_tag" in error) {
    const e = error as { _tag: string; reason?: unknown; message?: unknown }
    const detail = typeof e.reason === "string" ? e.reason : typeof e.message === "string" ? e.message : ""
    return detail === "" ? e._tag : `${e._tag}: ${detail}`
  }
  return error instanceof Error ? error.message : String(error)
}
