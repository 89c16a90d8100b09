import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { ServerConfigShape } from "../config/ServerConfig.js"
import type { Principal } from "../domain/Auth.js"
import { Forbidden, InvalidInput } from "../domain/Errors.js"

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
