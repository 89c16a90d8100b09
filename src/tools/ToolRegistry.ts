import type { SqlClient } from "@effect/sql"
import { jsonSchema, tool, type JSONSchema7, type ToolSet } from "ai"
import { Cause, Effect, Runtime } from "effect"
import { hasScope } from "../domain/Auth.js"
import type { ToolOutput } from "../domain/ToolOutput.js"
import { AccessControl } from "../auth/AccessControl.js"
import { Permission } from "../permission/Permission.js"
import { TaskAccess } from "../queue/TaskAccess.js"
import type { CurrentProject } from "../storage/ProjectDb.js"
import { builtinTools } from "./builtin/Builtins.js"
import type { Tool, ToolCallerContext, ToolContext, ToolFailure, ToolResult } from "./Tool.js"
import { WorkspaceGuard } from "./WorkspaceGuard.js"

export type { ToolCallerContext, ToolContext } from "./Tool.js"
export type { ToolOutput }

const aborted = (signal: AbortSignal) =>
  Effect.async<ToolOutput>((resume) => {
    const onAbort = () => resume(Effect.succeed({ ok: false, error: "the tool call was aborted" }))
    if (signal.aborted) return onAbort()
    signal.addEventListener("abort", onAbort, { once: true })
    return Effect.sync(() => signal.removeEventListener("abort", onAbort))
  })

/**
 * A tool call's work as the model sees its outcome: a ToolFailure or a defect becomes
 * `{ ok: false, error }`, and the call ends (as aborted) when `signal` fires.
 */
export const settle = <R>(name: string, work: Effect.Effect<ToolOutput, ToolFailure, R>, signal: AbortSignal): Effect.Effect<ToolOutput, never, R> =>
  work.pipe(
    Effect.catchTag("ToolFailure", (e) => Effect.succeed<ToolOutput>({ ok: false, error: e.message })),
    Effect.catchAllDefect((defect) =>
      Effect.as(Effect.logError(`tool ${name} crashed`, Cause.die(defect)), {
        ok: false,
        error: `${name} failed unexpectedly: ${defect instanceof Error ? defect.message : String(defect)}`
      } as const)
    ),
    (w) => Effect.raceFirst(w, aborted(signal))
  )

/** A tool's result as a successful ToolOutput. */
export const succeeded = (result: ToolResult): ToolOutput =>
  result.metadata === undefined ? { ok: true, output: result.output } : { ok: true, output: result.output, metadata: result.metadata }

/** The AI SDK tool for one of ours; `execute` runs one call and never rejects. */
export const sdkTool = (
  t: Tool,
  execute: (input: unknown, options: { readonly toolCallId: string; readonly abortSignal: AbortSignal | undefined }) => Promise<ToolOutput>
) =>
  tool<unknown, ToolOutput, {}>({
    description: t.description,
    inputSchema: jsonSchema<unknown>(t.inputJsonSchema as JSONSchema7),
    execute: (input, options) => execute(input, { toolCallId: options.toolCallId, abortSignal: options.abortSignal }),
    toModelOutput: ({ output }) => (output.ok ? { type: "text", value: output.output } : { type: "error-text", value: output.error })
  })

/** Aborts on the turn's signal or the SDK's, whichever fires first. */
const withSignal = (ctx: ToolCallerContext, signal: AbortSignal | undefined): ToolCallerContext =>
  signal === undefined || signal === ctx.abortSignal ? ctx : { ...ctx, abortSignal: AbortSignal.any([ctx.abortSignal, signal]) }

/**
 * The built-in tools and the one path every call takes: decode the arguments with the tool's
 * Schema, check the caller's scope and the Permission rules (possibly waiting for an answer), run
 * the tool. Failures of any step come back as `{ ok: false, error }`, never as a thrown error.
 * Every call gets the project's current WorkspaceFence, whatever fence the caller passed.
 * `task` finds SubAgents in the caller's context (see SubAgents.ts).
 */
export class ToolRegistry extends Effect.Service<ToolRegistry>()("kiris/ToolRegistry", {
  effect: Effect.gen(function* () {
    const permission = yield* Permission
    const guard = yield* WorkspaceGuard
    const control = yield* AccessControl
    const tools: ReadonlyMap<string, Tool> = new Map((yield* builtinTools).map((t) => [t.name, t]))

    const call = (t: Tool, input: unknown, caller: ToolCallerContext, toolCallId: string | null) =>
      Effect.gen(function* () {
        const ctx: ToolContext = {
          ...caller,
          fence: yield* guard.fenceFor(caller.projectId, caller.workspace),
          canExecute: control.canExecute(caller.caller, caller.projectId),
          ...(toolCallId !== null ? { toolCallId } : {})
        }
        const prepared = yield* t.prepare(input, ctx)
        if (t.requiresScope === "execute" && !(yield* control.canExecute(ctx.caller, ctx.projectId))) {
          return {
            ok: false,
            error: `${t.name} runs commands, which needs the execute grant in this project (and, for a key, the execute scope)`
          } as const
        }
        if (t.requiresScope !== undefined && !hasScope(ctx.caller, t.requiresScope)) {
          return { ok: false, error: `${t.name} needs the ${t.requiresScope} scope, which the caller's credentials lack` } as const
        }
        if (toolCallId !== null && ctx.recorded !== undefined) yield* Effect.timeoutOption(ctx.recorded(toolCallId), "2 seconds")
        const verdict = yield* permission.check({
          projectId: ctx.projectId,
          sessionId: ctx.sessionId,
          messageId: ctx.messageId,
          caller: ctx.caller,
          toolCallId,
          tool: t.name,
          target: prepared.target,
          input
        })
        if (!verdict.allowed) return { ok: false, error: verdict.reason } as const
        return succeeded(yield* prepared.run)
      }).pipe(
        (work) => settle(t.name, work, caller.abortSignal),
        Effect.tap((out) => Effect.annotateCurrentSpan("tool.ok", out.ok)),
        Effect.withSpan("ToolRegistry.call", { attributes: { tool: t.name, sessionId: caller.sessionId, toolCallId } })
      )

    const run = (name: string, input: unknown, ctx: ToolCallerContext, toolCallId: string | null) => {
      const t = tools.get(name)
      return t === undefined
        ? Effect.succeed<ToolOutput>({ ok: false, error: `unknown tool: ${name}; available: ${[...tools.keys()].join(", ")}` })
        : call(t, input, ctx, toolCallId)
    }

    /** Runs one tool by name, the same way the model's calls run. */
    const execute = Effect.fn("ToolRegistry.execute")(function* (name: string, input: unknown, ctx: ToolCallerContext) {
      return yield* run(name, input, ctx, null)
    }) as (name: string, input: unknown, ctx: ToolCallerContext) => Effect.Effect<ToolOutput, never, SqlClient.SqlClient | CurrentProject>

    /** The AI SDK ToolSet for one turn; its execute functions run in the context toolsFor ran in. */
    const toolsFor = (ctx: ToolCallerContext): Effect.Effect<ToolSet, never, SqlClient.SqlClient | CurrentProject> =>
      Effect.map(Effect.runtime<SqlClient.SqlClient | CurrentProject>(), (runtime) => {
        const runPromise = Runtime.runPromise(runtime)
        const set: ToolSet = {}
        for (const t of tools.values()) {
          set[t.name] = sdkTool(t, (input, options) => runPromise(run(t.name, input, withSignal(ctx, options.abortSignal), options.toolCallId)))
        }
        return set
      }).pipe(Effect.withSpan("ToolRegistry.toolsFor", { attributes: { sessionId: ctx.sessionId } }))

    return { toolsFor, execute, names: [...tools.keys()] as ReadonlyArray<string> } as const
  }),
  dependencies: [Permission.Default, TaskAccess.Default, AccessControl.Default, WorkspaceGuard.Default]
}) {}
