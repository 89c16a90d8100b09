import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { ServerConfigShape } from "../config/ServerConfig.js"
import type { Principal } from "../domain/Auth.js"
import { Forbidden, InvalidInput, WorkspaceUnreachable } from "../domain/Errors.js"

const isWithin = (root: string, target: string) => {
  const rel = path.relative(root, target)
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel))
}

const realOrResolved = (p: string) => {
  try {
    return fs.realpathSync.native(p)
  } catch {
    return path.resolve(p)
  }
}

/**
 * Decides whether a project may use an existing directory as its workspace, and returns the path
 * to store (real, symlinks resolved). Only server admins may choose one, only under the configured
 * `workspaceRoots`, and never inside the hub's data dir (projects without a chosen workspace get
 * their own directory there). Whatever a workspace contains, the tools' WorkspaceFence keeps the
 * data dir and other projects' workspaces out of reach.
 */
export const admitWorkspace = (
  caller: Principal,
  requested: string,
  config: Pick<ServerConfigShape, "dataDir" | "workspaceRoots">
): Effect.Effect<string, Forbidden | InvalidInput> =>
  Effect.suspend((): Effect.Effect<string, Forbidden | InvalidInput> => {
    if (!caller.isAdmin) {
      return Effect.fail(
        new Forbidden({
          reason: "only server admins may use an existing directory as a project's workspace; leave out the workspace to get a new one"
        })
      )
    }
    const resolved = path.resolve(requested)
    let real: string
    try {
      real = fs.realpathSync.native(resolved)
      if (!fs.statSync(real).isDirectory()) throw new Error("not a directory")
    } catch {
      return Effect.fail(new InvalidInput({ reason: `workspace is not a directory: ${requested}` }))
    }
    const roots = config.workspaceRoots.map(realOrResolved)
    if (!roots.some((root) => isWithin(root, real))) {
      const allowed = roots.length === 0 ? "none are configured" : roots.join(", ")
      return Effect.fail(
        new Forbidden({ reason: `workspace ${real} is outside the allowed workspace roots (${allowed}); the workspaceRoots setting lists them` })
      )
    }
    if (isWithin(realOrResolved(config.dataDir), real)) {
      return Effect.fail(new InvalidInput({ reason: `workspace ${real} is inside the hub's data directory` }))
    }
    return Effect.succeed(real)
  })

/** Why `workspace` cannot be used on this hub, or undefined when it is a directory here. */
const unreachableBecause = (workspace: string): string | undefined => {
  try {
    return fs.statSync(workspace).isDirectory() ? undefined : "it is not a directory"
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    return code === "ENOENT" || code === "ENOTDIR" ? "it does not exist" : `it cannot be read (${code ?? String(e)})`
  }
}

/**
 * The workspace of a project as this hub sees it: the one check, made by everything that needs the
 * project's files (turns, tools, file reads and writes), that its directory is reachable here. Hubs
 * sharing a database share the data dir and the workspaces, so they must mount the same filesystem
 * at the same paths; a hub that cannot see a workspace fails those operations with
 * `WorkspaceUnreachable`, and still lists and deletes the project (which need no files).
 */
export const workspaceUnreachable = (projectId: string, workspace: string): WorkspaceUnreachable | undefined => {
  const because = unreachableBecause(workspace)
  return because === undefined
    ? undefined
    : new WorkspaceUnreachable({
        projectId,
        path: workspace,
        reason:
          `the workspace of project ${projectId} is not reachable on this hub: ${workspace} (${because}); ` +
          "hubs sharing a database need the same filesystem, with the data dir and every workspace at the same paths"
      })
}

/** Fails `WorkspaceUnreachable` unless the project's workspace is a directory on this hub. */
export const reachableWorkspace = (projectId: string, workspace: string): Effect.Effect<void, WorkspaceUnreachable> =>
  Effect.suspend(() => {
    const error = workspaceUnreachable(projectId, workspace)
    return error === undefined ? Effect.void : Effect.fail(error)
  })

/**
 * One warning line per project whose workspace this hub cannot reach: logged at start by a hub
 * sharing its database, where it means the filesystem is not the one the other hubs use.
 */
export const warnUnreachableWorkspaces = (projects: ReadonlyArray<{ readonly id: string; readonly workspace: string }>) =>
  Effect.forEach(
    projects,
    (project) => {
      const error = workspaceUnreachable(project.id, project.workspace)
      return error === undefined
        ? Effect.void
        : Effect.logWarning(error.reason).pipe(Effect.annotateLogs({ project: project.id, path: project.workspace }))
    },
    { discard: true }
  )
