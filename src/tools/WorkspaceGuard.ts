import { SqlSchema } from "@effect/sql"
import { Effect, Schema } from "effect"
import * as os from "node:os"
import * as path from "node:path"
import { ServerConfig } from "../config/ServerConfig.js"
import { ProjectId } from "../domain/Ids.js"
import { projectDir } from "../storage/ProjectDb.js"
import { outsideTransaction, RootDb } from "../storage/RootDb.js"
import { decodedOrDie, Int, NullableInt } from "../storage/Rows.js"
import { isWithin, makeFence, realPathOf, type WorkspaceFence } from "./WorkspaceFence.js"

/**
 * Builds each project's WorkspaceFence from the hub's state: the data dir, the config directories
 * (`./.kiris` and `~/.kiris`, where config files may hold secrets) and every project's workspace
 * from the root database. The list of workspaces is cached and reloaded when the projects change
 * (their number or the newest creation time; a workspace never changes), checked with one small
 * query per `fenceFor`; fences are memoized per project until then.
 */
export class WorkspaceGuard extends Effect.Service<WorkspaceGuard>()("kiris/WorkspaceGuard", {
  effect: Effect.gen(function* () {
    const config = yield* ServerConfig
    const sql = yield* RootDb
    const privateDirs = [
      ...new Set(
        [config.dataDir, path.join(process.cwd(), ".kiris"), path.join(os.homedir(), ".kiris")].flatMap((d) => [path.resolve(d), realPathOf(d)])
      )
    ]

    let known = ""
    let workspaces: ReadonlyArray<readonly [ProjectId, string]> = []
    const fences = new Map<string, WorkspaceFence>()

    const projectsVersion = SqlSchema.single({
      Request: Schema.Void,
      Result: Schema.Struct({ n: Int, last: NullableInt }),
      execute: () => sql`SELECT count(*) AS n, max(created_at) AS last FROM projects`
    })
    const projectWorkspaces = SqlSchema.findAll({
      Request: Schema.Void,
      Result: Schema.Struct({ id: ProjectId, workspace: Schema.String }),
      execute: () => sql`SELECT id, workspace FROM projects`
    })

    const refresh = outsideTransaction(
      Effect.gen(function* () {
        const row = yield* projectsVersion(undefined).pipe(decodedOrDie("projects count and newest"))
        const version = `${row.n}:${row.last ?? 0}`
        if (version === known) return
        const rows = yield* projectWorkspaces(undefined).pipe(decodedOrDie("projects workspaces"))
        workspaces = rows.map((r) => [r.id, realPathOf(r.workspace)] as const)
        known = version
        fences.clear()
      })
    )

    const build = (projectId: ProjectId, workspace: string): WorkspaceFence => {
      const root = realPathOf(workspace)
      return makeFence({
        privateDirs,
        ownFiles: realPathOf(path.join(projectDir(config.dataDir, projectId), "files")),
        // A workspace that holds this one (or is the same directory) was chosen by a server admin
        // to overlap; everything of it outside this workspace is out of reach anyway.
        otherWorkspaces: workspaces.flatMap(([id, ws]) => (id === projectId || isWithin(ws, root) ? [] : [ws]))
      })
    }

    /** The fence of a project's tools, from the hub's current state. */
    const fenceFor = (projectId: ProjectId, workspace: string): Effect.Effect<WorkspaceFence> =>
      Effect.map(refresh, () => {
        const key = `${projectId}\0${workspace}`
        const cached = fences.get(key)
        if (cached !== undefined) return cached
        const fence = build(projectId, workspace)
        fences.set(key, fence)
        return fence
      })

    return { fenceFor } as const
  })
}) {}
