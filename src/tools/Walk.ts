import { Chunk, Effect, Option, Stream } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { WorkspaceFence } from "./WorkspaceFence.js"

/** Directories no tool descends into. */
export const ignoredDirs: ReadonlySet<string> = new Set([".git", "node_modules"])

/** How many files a walking tool reads at once. */
export const READ_CONCURRENCY = 8

export interface WalkEntry {
  /** Relative to the walk's start, `/`-separated. */
  readonly rel: string
  readonly abs: string
  readonly isDir: boolean
  readonly isSymlink: boolean
  /** A regular file (not a directory, symlink, FIFO, socket or device). */
  readonly isFile: boolean
}

const byName = (a: fs.Dirent, b: fs.Dirent) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)

/** A directory's entries in name order; an unreadable directory has none. */
const readSorted = (dir: string): Effect.Effect<ReadonlyArray<fs.Dirent>> =>
  Effect.promise(() =>
    fs.promises.readdir(dir, { withFileTypes: true }).then(
      (entries) => entries.sort(byName),
      () => []
    )
  )

/**
 * Depth-first walk in name order, without following symlinks and skipping `ignoredDirs` and
 * whatever the fence hides (neither listed nor entered). `start` must be a real path (as
 * `resolveInWorkspace` returns). Directories are read asynchronously, one at a time and only as
 * far as the consumer pulls, so a walk never blocks other work and stops (or is interrupted)
 * between any two directory reads.
 */
export const walk = (start: string, maxDepth: number, fence: WorkspaceFence): Stream.Stream<WalkEntry> => {
  const go = (dir: string, prefix: string, depth: number): Stream.Stream<WalkEntry> =>
    Stream.unwrap(
      Effect.map(readSorted(dir), (dirents) =>
        Stream.fromIterable(dirents).pipe(
          Stream.filterMap((e) => {
            if (e.isDirectory() && ignoredDirs.has(e.name)) return Option.none()
            const abs = path.join(dir, e.name)
            if (fence.hides(abs)) return Option.none()
            const rel = prefix === "" ? e.name : `${prefix}/${e.name}`
            return Option.some<WalkEntry>({ rel, abs, isDir: e.isDirectory(), isSymlink: e.isSymbolicLink(), isFile: e.isFile() })
          }),
          Stream.flatMap((entry) =>
            entry.isDir && depth < maxDepth ? Stream.concat(Stream.succeed(entry), go(entry.abs, entry.rel, depth + 1)) : Stream.succeed(entry)
          )
        )
      )
    )
  return go(start, "", 1)
}

/** The first `limit` elements of a stream, and whether it had more (it is not pulled further). */
export const takeUpTo = <A>(
  stream: Stream.Stream<A>,
  limit: number
): Effect.Effect<{ readonly items: ReadonlyArray<A>; readonly truncated: boolean }> =>
  stream.pipe(
    Stream.take(limit + 1),
    Stream.runCollect,
    Effect.map((chunk) => ({ items: Chunk.toReadonlyArray(Chunk.take(chunk, limit)), truncated: Chunk.size(chunk) > limit }))
  )

/** Stats a path (following symlinks): undefined when nothing can be stat'ed there. */
export const statOrUndefined = (p: string): Effect.Effect<fs.Stats | undefined> => Effect.promise(() => fs.promises.stat(p).catch(() => undefined))

/** True when the first bytes of the buffer contain a NUL (how tools tell binary files apart). */
export const looksBinary = (buf: Uint8Array) => buf.subarray(0, 8192).includes(0)
