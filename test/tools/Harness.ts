import type { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import * as os from "node:os"
import type { HubLayer } from "../../src/AppLayer.js"
import type { ToolOutput } from "../../src/domain/ToolOutput.js"
import type { MessageId, SessionId } from "../../src/domain/Ids.js"
import type { Project } from "../../src/domain/Project.js"
import { type CurrentProject, ProjectDb } from "../../src/storage/ProjectDb.js"
import { ToolRegistry, type ToolCallerContext } from "../../src/tools/ToolRegistry.js"
import type { ServerConfigShape } from "../../src/config/ServerConfig.js"
import { startHub, type TestHub } from "../support/Hub.js"
import { scopedTempDir } from "../support/TempDir.js"

export interface Harness {
  readonly hub: TestHub
  readonly client: Effect.Effect.Success<ReturnType<TestHub["tcpClient"]>>
  readonly project: Project
  /** The project's workspace (a fresh temp dir). */
  readonly workspace: string
  readonly ctx: ToolCallerContext
  /** Runs a tool through the hub's ToolRegistry, inside the project's database scope. */
  readonly exec: (name: string, input: unknown, override?: Partial<ToolCallerContext>) => Effect.Effect<ToolOutput>
  /** Runs any effect with the hub's services inside the project's database scope. */
  readonly inProject: <A, E>(effect: Effect.Effect<A, E, InProjectEnv>) => Effect.Effect<A, E>
}

export type InProjectEnv = Layer.Layer.Success<typeof HubLayer> | SqlClient.SqlClient | CurrentProject

/**
 * A hub (in this process) with one project whose workspace is a temp dir (the system temp dir is
 * among the hub's workspace roots unless `hub` says otherwise). With `allowAll`, project
 * rules allow every built-in tool so tool tests never wait on a permission prompt.
 */
export const makeHarness = (options: { readonly allowAll?: boolean; readonly hub?: Partial<ServerConfigShape> } = {}) =>
  Effect.gen(function* () {
    const workspace = yield* scopedTempDir("kiris-ws-")
    const hub = yield* startHub({ workspaceRoots: [os.tmpdir()], ...options.hub })
    const client = yield* hub.tcpClient()
    const project = yield* client.project.create({ name: "tools", description: "", workspace })
    const caller = yield* client.user.whoami()
    if (options.allowAll === true) {
      for (const tool of ["write", "edit", "bash", "enqueue"]) {
        yield* client.permission.setRule({ projectId: project.id, tool, pattern: "*", action: "allow" })
      }
    }
    const ctx: ToolCallerContext = {
      projectId: project.id,
      sessionId: "ses_test" as SessionId,
      messageId: "msg_test" as MessageId,
      workspace: project.workspace,
      caller,
      abortSignal: new AbortController().signal
    }
    const inProject = <A, E>(effect: Effect.Effect<A, E, InProjectEnv>) =>
      Effect.flatMap(ProjectDb, (dbs) => dbs.withProject(project.id)(effect)).pipe(Effect.provide(hub.context))
    const exec = (name: string, input: unknown, override: Partial<ToolCallerContext> = {}) =>
      inProject(Effect.flatMap(ToolRegistry, (r) => r.execute(name, input, { ...ctx, ...override })))
    return { hub, client, project, workspace: project.workspace, ctx, exec, inProject } satisfies Harness
  })

export class ToolHarness extends Context.Tag("test/ToolHarness")<ToolHarness, Harness>() {
  static readonly allowAll = Layer.scoped(ToolHarness, makeHarness({ allowAll: true }))
}
