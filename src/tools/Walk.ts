import * as fs from "node:fs"
import * as path from "node:path"
import type { WorkspaceFence } from "./WorkspaceFence.js"

/** Directories no tool descends into. */
export const ignoredDirs: ReadonlySet<string> = new Set([".git", "node_modules"])

export interface WalkEntry {
  /** Relative to the walk's start, `/`-separated. */
  readonly rel: string
  readonly abs: string
  readonly isDir: boolean
  readonly isSymlink: boolean
}

/**
 * Depth-first walk in name order, without following symlinks and skipping `ignoredDirs` and
 * whatever the fence hides (neither listed nor entered). `start` must be a real path (as
 * `resolveInWorkspace` returns). Calls `visit` for each entry; returns early when `visit` returns
 * false.
 */
export const walk = (start: string, maxDepth: number, fence: WorkspaceFence, visit: (entry: WalkEntry) => boolean): void => {
  const go = (dir: string, prefix: string, depth: number): boolean => {
    let entries: Array<fs.Dirent>
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch {
      return true
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const e of entries) {
      if (e.isDirectory() && ignoredDirs.has(e.name)) continue
      const rel = prefix === "" ? e.name : `${prefix}/${e.name}`
      const abs = path.join(dir, e.name)
      if (fence.hides(abs)) continue
      const entry = { rel, abs, isDir: e.isDirectory(), isSymlink: e.isSymbolicLink() }
      if (!visit(entry)) return false
      if (entry.isDir && depth < maxDepth && !go(abs, rel, depth + 1)) return false
    }
    return true
  }
  go(start, "", 1)
}

/** True when the first bytes of the buffer contain a NUL (how tools tell binary files apart). */
export const looksBinary = (buf: Uint8Array) => buf.subarray(0, 8192).includes(0)
