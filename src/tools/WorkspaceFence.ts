import * as fs from "node:fs"
import * as path from "node:path"

/**
 * The places inside (or around) a project's workspace that its tools may never touch: the hub's
 * private directories (the data dir with root.db, admin.key, the JWT secret, worker workdirs and
 * every project's own directory; the config directories) and the workspaces of other projects.
 * All paths are real (symlinks resolved), so callers check the real path of what they are about
 * to open.
 */
export interface WorkspaceFence {
  /** Why a real absolute path is off limits, or undefined when tools may use it. */
  readonly check: (real: string) => string | undefined
  /**
   * True when a directory walk must neither list nor enter this real path: it is the top of a
   * denied subtree. Exact for walks that start at a path `check` accepted and do not follow
   * symlinks.
   */
  readonly hides: (real: string) => boolean
}

export interface FenceSpec {
  /** Hub-private directories, denied with all their contents. */
  readonly privateDirs: ReadonlyArray<string>
  /** The one place inside them the project may use: its own default workspace. */
  readonly ownFiles: string
  /** Workspaces of other projects, denied with all their contents. */
  readonly otherWorkspaces: ReadonlyArray<string>
}

/** `fs.realpathSync.native` of the path, or of its longest existing ancestor with the rest appended. */
export const realPathOf = (p: string): string => {
  let existing = path.resolve(p)
  const rest: Array<string> = []
  for (;;) {
    try {
      return path.join(fs.realpathSync.native(existing), ...rest)
    } catch {
      const up = path.dirname(existing)
      if (up === existing) return path.resolve(p)
      rest.unshift(path.basename(existing))
      existing = up
    }
  }
}

/** True when `target` is `root` or below it (both absolute and normalized). */
export const isWithin = (root: string, target: string): boolean => {
  const rel = path.relative(root, target)
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel))
}

export const makeFence = (spec: FenceSpec): WorkspaceFence => {
  const privateDirs = new Set(spec.privateDirs)
  const others = new Set(spec.otherWorkspaces)
  return {
    check: (real) => {
      let exempt = false
      for (let p = real; ;) {
        if (others.has(p)) return "it is inside another project's workspace"
        if (p === spec.ownFiles) exempt = true
        else if (!exempt && privateDirs.has(p)) return "it is inside the hub's private data"
        const up = path.dirname(p)
        if (up === p) return undefined
        p = up
      }
    },
    hides: (real) => others.has(real) || privateDirs.has(real)
  }
}
