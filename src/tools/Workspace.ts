import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ToolFailure } from "./Tool.js"
import type { WorkspaceFence } from "./WorkspaceFence.js"

export interface WorkspacePath {
  /** Real absolute path (symlinks of existing ancestors resolved). */
  readonly absolute: string
  /** Relative to the workspace root, `/`-separated; `.` for the root itself. */
  readonly relative: string
}

const isInside = (root: string, target: string) => {
  const rel = path.relative(root, target)
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel))
}

const toPosix = (p: string) => p.split(path.sep).join("/")

const lexists = (p: string) => {
  try {
    fs.lstatSync(p)
    return true
  } catch {
    return false
  }
}

/** Where a tool call's paths are confined: the workspace, minus what its fence denies. */
export interface WorkspaceScope {
  readonly workspace: string
  readonly fence: WorkspaceFence
}

/**
 * Resolves a path given to a tool inside the project workspace, or fails with a clear message:
 * relative paths are taken from the workspace root; `..` escapes, absolute paths outside the
 * workspace and symlinks (of the path or any existing ancestor) leading outside are refused, and
 * so is any path whose real location the fence denies (the hub's data dir, other projects'
 * workspaces), however it is reached.
 */
export const resolveInWorkspace = ({ workspace, fence }: WorkspaceScope, input: string): Effect.Effect<WorkspacePath, ToolFailure> =>
  Effect.suspend(() => {
    const refuse = (message: string) => Effect.fail(new ToolFailure({ message }))
    if (input.includes("\0")) return refuse("path contains a NUL byte")
    let root: string
    try {
      root = fs.realpathSync.native(workspace)
    } catch {
      return refuse(`the project workspace does not exist: ${workspace}`)
    }
    const base = path.resolve(workspace)
    const lexical = path.resolve(base, input === "" ? "." : input)
    let target: string
    if (isInside(base, lexical)) target = path.join(root, path.relative(base, lexical))
    else if (isInside(root, lexical)) target = lexical
    else if (path.isAbsolute(input)) return refuse(`path is outside the workspace: ${input}`)
    else return refuse(`path escapes the workspace: ${input}`)

    let existing = target
    const rest: Array<string> = []
    while (!lexists(existing)) {
      rest.unshift(path.basename(existing))
      existing = path.dirname(existing)
    }
    let real: string
    try {
      real = path.join(fs.realpathSync.native(existing), ...rest)
    } catch {
      return refuse(`path goes through a broken symlink: ${input}`)
    }
    if (!isInside(root, real)) return refuse(`path leads outside the workspace through a symlink: ${input}`)
    const denied = fence.check(real)
    if (denied !== undefined) return refuse(`access denied: ${input} is off limits to tools because ${denied}`)
    return Effect.succeed({ absolute: real, relative: toPosix(path.relative(root, real)) || "." })
  })
