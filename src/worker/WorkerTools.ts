import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import type { ToolSet } from "ai"
import { Context, Effect, Runtime, type Scope } from "effect"
import * as os from "node:os"
import * as path from "node:path"
import { RemoteToolNames } from "../domain/AgentTask.js"
import { Principal } from "../domain/Auth.js"
import { MessageId, ProjectId, type SessionId, UserId } from "../domain/Ids.js"
import { CurrentProject } from "../storage/ProjectDb.js"
import { BashTool } from "../tools/builtin/BashTool.js"
import { EditTool } from "../tools/builtin/EditTool.js"
import { GlobTool } from "../tools/builtin/GlobTool.js"
import { GrepTool } from "../tools/builtin/GrepTool.js"
import { ListTool } from "../tools/builtin/ListTool.js"
import { ReadTool } from "../tools/builtin/ReadTool.js"
import { WriteTool } from "../tools/builtin/WriteTool.js"
import type { Tool, ToolEnv } from "../tools/Tool.js"
import { sdkTool, settle, succeeded, type ToolContext, type ToolOutput } from "../tools/ToolRegistry.js"
import { isWithin, makeFence, realPathOf, type WorkspaceFence } from "../tools/WorkspaceFence.js"
import { WorkerConfig, type WorkerConfigShape } from "./WorkerConfig.js"

/**
 * The tools of a remote agent turn (an `agent` task), run here with the worker's policy, as no
 * person is there to be asked:
 * - the workspace is the task's workdir: every path is confined to it by the same resolution the
 *   hub's tools use (`..`, absolute paths and symlinks leading out are refused), and the worker's
 *   fence denies its data dir (its key, other tasks' workdirs) and the config directories
 *   (`./.kiris`, `~/.kiris`) even when the workdir holds them;
 * - read, write, edit, list, glob and grep run inside it without asking;
 * - tools that run commands (`bash`) run only on a worker started with `--trust-shell`; otherwise
 *   the call returns a refusal the model reads, and the turn goes on;
 * - `task` and `enqueue` are not offered (see RemoteToolNames).
 * Tools act as the worker itself. Their effects may ask for a project database (ToolEnv), which a
 * worker has none of: they get a scratch in-memory SQLite database for the turn, discarded after it;
 * none of the tools offered here stores anything in it.
 */

/** Every tool a worker offers, by name. */
const offered: ReadonlyMap<string, Tool> = new Map([ReadTool, WriteTool, EditTool, ListTool, GlobTool, GrepTool, BashTool].map((t) => [t.name, t]))

export const workerToolNames: ReadonlyArray<string> = RemoteToolNames.filter((n) => offered.has(n))

export const shellRefusal = (tool: string) =>
  `refused: this worker was started without --trust-shell, so remote agent turns may not run ${tool} here ` +
  "(restart it with `kiris worker --trust-shell` or `kiris up --trust-shell`); use the file tools instead"

/**
 * What a worker's tools may never touch: its data dir (with its key file and every task's workdir)
 * and the config directories, except the task's own workdir when that is one of the data dir's
 * per-task workdirs.
 */
export const workerFence = (config: WorkerConfigShape, workdir: string): WorkspaceFence => {
  const privateDirs = [config.dataDir, path.join(process.cwd(), ".kiris"), path.join(os.homedir(), ".kiris")].flatMap((d) => [
    path.resolve(d),
    realPathOf(d)
  ])
  const own = realPathOf(workdir)
  const taskDirs = realPathOf(path.join(config.dataDir, "workdirs"))
  return makeFence({
    privateDirs: [...new Set(privateDirs)],
    // A shared workdir never lifts the fence: only a per-task directory below `workdirs` does.
    ownFiles: own !== taskDirs && isWithin(taskDirs, own) ? own : "",
    otherWorkspaces: []
  })
}

/** Where one remote turn runs and for which session. */
export interface RemoteTurn {
  /** Undefined when the task does not say (none of the worker's tools reads these ids). */
  readonly projectId: ProjectId | undefined
  readonly sessionId: SessionId
  readonly messageId: MessageId | undefined
  readonly workdir: string
  readonly abortSignal: AbortSignal
  /** The tool names the agent may use; every offered one when undefined. */
  readonly allowed: ReadonlyArray<string> | undefined
}

const worker = new Principal({ kind: "worker", userId: UserId.make("worker"), name: "worker", isAdmin: false, scopes: ["worker"] })

/** A scratch database standing in for the project database that tools' effects may ask for. */
const scratchEnv = (projectId: ProjectId) =>
  Effect.map(SqliteClient.make({ filename: ":memory:" }).pipe(Effect.provide(Reactivity.layer)), (client) =>
    Context.make(SqlClient.SqlClient, client).pipe(Context.add(CurrentProject, projectId))
  )

/** One call with the worker's policy: commands need `--trust-shell`; paths are resolved by the tool. */
const callTool = (t: Tool, input: unknown, ctx: ToolContext, trustShell: boolean): Effect.Effect<ToolOutput, never, ToolEnv> =>
  settle(
    t.name,
    Effect.gen(function* () {
      if (t.requiresScope === "execute" && !trustShell) return { ok: false, error: shellRefusal(t.name) } as const
      const prepared = yield* t.prepare(input, ctx)
      return succeeded(yield* prepared.run)
    }),
    ctx.abortSignal
  ).pipe(Effect.withSpan("WorkerTools.call", { attributes: { tool: t.name, sessionId: ctx.sessionId } }))

/** The AI SDK ToolSet of a remote turn; it lives as long as the surrounding scope (the turn). */
export const workerTools = (turn: RemoteTurn): Effect.Effect<ToolSet, never, Scope.Scope | WorkerConfig> =>
  Effect.gen(function* () {
    const config = yield* WorkerConfig
    const names = workerToolNames.filter((n) => turn.allowed === undefined || turn.allowed.includes(n))
    if (names.length === 0) return {}
    const projectId = turn.projectId ?? ProjectId.make("")
    const runtime = yield* Effect.provide(Effect.runtime<ToolEnv>(), yield* scratchEnv(projectId))
    const runPromise = Runtime.runPromise(runtime)
    const ctx: ToolContext = {
      projectId,
      sessionId: turn.sessionId,
      messageId: turn.messageId ?? MessageId.make(""),
      workspace: turn.workdir,
      caller: worker,
      abortSignal: turn.abortSignal,
      fence: workerFence(config, turn.workdir)
    }
    const set: ToolSet = {}
    for (const name of names) {
      const t = offered.get(name)!
      set[name] = sdkTool(t, (input, options) => {
        const signal = options.abortSignal === undefined ? ctx.abortSignal : AbortSignal.any([ctx.abortSignal, options.abortSignal])
        return runPromise(callTool(t, input, { ...ctx, abortSignal: signal }, config.trustShell))
      })
    }
    return set
  })
