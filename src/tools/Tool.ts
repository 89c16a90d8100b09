import type { SqlClient } from "@effect/sql"
import { Data, Effect, JSONSchema, ParseResult, Schema } from "effect"
import type { Principal, Scope } from "../domain/Auth.js"
import type { MessageId, ProjectId, SessionId } from "../domain/Ids.js"
import type { SubjectKind } from "../permission/Rules.js"
import type { CurrentProject } from "../storage/ProjectDb.js"
import type { WorkspaceFence } from "./WorkspaceFence.js"

/** Everything a tool call knows about where it runs and for whom. */
export interface ToolContext {
  readonly projectId: ProjectId
  readonly sessionId: SessionId
  readonly messageId: MessageId
  /** Absolute project workspace (Project.workspace); every path a tool touches is confined to it. */
  readonly workspace: string
  /** Who started the turn. */
  readonly caller: Principal
  readonly abortSignal: AbortSignal
  /** What no tool may touch, whatever the workspace holds; the registry sets it on every call. */
  readonly fence: WorkspaceFence
  /**
   * Whether the caller may run commands in the project (the `execute` grant and scope), for tools
   * that hand work elsewhere (a remote sub-agent's `bash`); the registry sets it on every call.
   */
  readonly canExecute?: Effect.Effect<boolean>
  /** The model's id of this call (absent for calls run outside the model's tool loop); the registry sets it. */
  readonly toolCallId?: string
  /**
   * In an agent turn: waits until the call with this id is stored and published, so that a
   * permission request never reaches clients before the tool call it is about.
   */
  readonly recorded?: (toolCallId: string) => Effect.Effect<void>
}

/** What callers of the registry supply: a ToolContext without the fence and grant, which come from the hub's state. */
export type ToolCallerContext = Omit<ToolContext, "fence" | "canExecute" | "toolCallId">

/** What a running tool may use: the project's database scope. */
export type ToolEnv = SqlClient.SqlClient | CurrentProject

/** An expected tool failure; its message is what the model reads. */
export class ToolFailure extends Data.TaggedError("ToolFailure")<{ readonly message: string }> {}

export const fail = (message: string) => Effect.fail(new ToolFailure({ message }))

/** A thrown error as the ToolFailure the model reads: `what: <the error's message>`. */
export const failureOf =
  (what: string) =>
  (e: unknown): ToolFailure =>
    new ToolFailure({ message: `${what}: ${e instanceof Error ? e.message : String(e)}` })

export interface ToolResult {
  readonly output: string
  readonly metadata?: Readonly<Record<string, unknown>>
}

/** What permission rules are matched against for one call, and how it is shown to whoever answers. */
export interface PermissionTarget {
  readonly subject: string
  readonly kind: SubjectKind
  readonly title: string
}

export interface ToolSpec<A, I> {
  readonly name: string
  readonly description: string
  readonly parameters: Schema.Schema<A, I>
  /** A scope the caller's credentials must carry, checked before any rule. */
  readonly requiresScope?: Scope
  readonly permission: (args: A, ctx: ToolContext) => Effect.Effect<PermissionTarget, ToolFailure>
  readonly run: (args: A, ctx: ToolContext) => Effect.Effect<ToolResult, ToolFailure, ToolEnv>
}

/** A call whose arguments decoded: what to check, then what to run. */
export interface PreparedCall {
  readonly target: PermissionTarget
  readonly run: Effect.Effect<ToolResult, ToolFailure, ToolEnv>
}

/** A tool with its argument types erased, as the registry holds it. */
export interface Tool {
  readonly name: string
  readonly description: string
  /** Self-contained (no `$ref`), as model providers prefer. */
  readonly inputJsonSchema: Record<string, unknown>
  readonly requiresScope: Scope | undefined
  readonly prepare: (input: unknown, ctx: ToolContext) => Effect.Effect<PreparedCall, ToolFailure>
}

const schemaMaps = new Set(["properties", "patternProperties", "$defs", "definitions"])

/** Inlines `$defs` references and drops generated titles (descriptions are what the model reads). */
const inlineSchema = (node: unknown, defs: Record<string, unknown>, depth: number): unknown => {
  if (Array.isArray(node)) return node.map((n) => inlineSchema(n, defs, depth))
  if (node === null || typeof node !== "object" || depth > 32) return node
  const out: Record<string, unknown> = {}
  const ref = (node as { $ref?: unknown }).$ref
  if (typeof ref === "string" && ref.startsWith("#/$defs/")) {
    Object.assign(out, inlineSchema(defs[decodeURIComponent(ref.slice("#/$defs/".length))], defs, depth + 1))
  }
  for (const [key, value] of Object.entries(node)) {
    if (key === "$ref" || key === "$defs" || key === "$schema" || key === "title") continue
    out[key] =
      schemaMaps.has(key) && value !== null && typeof value === "object"
        ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, inlineSchema(v, defs, depth + 1)]))
        : inlineSchema(value, defs, depth + 1)
  }
  return out
}

export const modelJsonSchema = <A, I>(schema: Schema.Schema<A, I>): Record<string, unknown> => {
  const root = JSONSchema.make(schema) as { $defs?: Record<string, unknown> }
  return inlineSchema(root, root.$defs ?? {}, 0) as Record<string, unknown>
}

export const defineTool = <A, I>(spec: ToolSpec<A, I>): Tool => {
  const decode = Schema.decodeUnknown(spec.parameters, { errors: "all" })
  return {
    name: spec.name,
    description: spec.description,
    inputJsonSchema: modelJsonSchema(spec.parameters),
    requiresScope: spec.requiresScope,
    prepare: (input, ctx) =>
      decode(input).pipe(
        Effect.mapError((e) => new ToolFailure({ message: `invalid arguments for ${spec.name}:\n${ParseResult.TreeFormatter.formatErrorSync(e)}` })),
        Effect.flatMap((args) => Effect.map(spec.permission(args, ctx), (target) => ({ target, run: spec.run(args, ctx) })))
      )
  }
}

/** Describes a schema field for the model (descriptions flow into the JSON schema it sees). */
export const described = <S extends Schema.Schema.Any>(schema: S, description: string): S => schema.annotations({ description }) as S
