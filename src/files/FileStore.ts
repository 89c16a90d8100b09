import type { SqlClient } from "@effect/sql"
import { Clock, Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ServerConfig } from "../config/ServerConfig.js"
import { type FileAuthor, FileTooLarge, PathRefused, QuotaExceeded } from "../domain/File.js"
import type { ProjectId } from "../domain/Ids.js"
import { EventBus } from "../events/EventBus.js"
import { CurrentProject } from "../storage/ProjectDb.js"
import { resolveInWorkspace, type WorkspacePath } from "../tools/Workspace.js"
import { WorkspaceGuard } from "../tools/WorkspaceGuard.js"
import { Blobs, sha256 } from "./Blobs.js"
import { FilesRepo, type VersionRecord } from "./FilesRepo.js"
import { Retention } from "./Retention.js"

export type Disk =
  { readonly kind: "missing" } | { readonly kind: "dir" } | { readonly kind: "file"; readonly size: number; readonly mtimeMs: number }

/** The latest recorded version of a path after comparing it with the disk. */
export interface Synced {
  readonly latest: Option.Option<VersionRecord>
  /** True when this comparison recorded an `external` version. */
  readonly external: boolean
  readonly disk: Disk
  /** The disk content, when the comparison had to read it. */
  readonly content: Uint8Array | undefined
}

const external: FileAuthor = { kind: "external" }

/**
 * A file's mtime is remembered (for the size+mtime fast path) only once it is this old: a change
 * made within the same clock tick as the one remembered would otherwise go unnoticed.
 */
const SETTLED_MS = 50

export const observe = (absolute: string) =>
  Effect.sync((): Disk => {
    const st = fs.statSync(absolute, { throwIfNoEntry: false })
    if (st === undefined) return { kind: "missing" }
    if (st.isDirectory()) return { kind: "dir" }
    return { kind: "file", size: st.size, mtimeMs: st.mtimeMs }
  })

// Date.now: compared with the file system's mtime, which is wall-clock time whatever the Clock says
const settled = (mtimeMs: number) => (Date.now() - mtimeMs > SETTLED_MS ? mtimeMs : null)

/**
 * The shared steps of every file operation: path confinement, the per-project mutex that orders
 * changes, comparing the disk with the latest recorded version (recording `external` changes),
 * storing contents under the size cap and quota, and recording versions (with their event).
 */
export class FileStore extends Effect.Service<FileStore>()("kiris/FileStore", {
  effect: Effect.gen(function* () {
    const config = yield* ServerConfig
    const repo = yield* FilesRepo
    const blobs = yield* Blobs
    const guard = yield* WorkspaceGuard
    const bus = yield* EventBus
    const retention = yield* Retention
    const mutexes = new Map<ProjectId, Effect.Semaphore>()

    /** Runs the effect while no other change to the current project's files runs. */
    const exclusive = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.flatMap(CurrentProject, (projectId) => {
        let m = mutexes.get(projectId)
        if (m === undefined) {
          m = Effect.unsafeMakeSemaphore(1)
          mutexes.set(projectId, m)
        }
        return m.withPermits(1)(effect)
      })

    /** Confines a path to the workspace (no `..`, no symlink out, nothing the fence denies). */
    const resolve = (workspace: string, input: string): Effect.Effect<WorkspacePath, PathRefused, CurrentProject> =>
      Effect.gen(function* () {
        const projectId = yield* CurrentProject
        const fence = yield* guard.fenceFor(projectId, workspace)
        const p = yield* resolveInWorkspace({ workspace, fence }, input).pipe(
          Effect.mapError((e) => new PathRefused({ path: input, reason: e.message }))
        )
        if (p.relative === ".") return yield* new PathRefused({ path: input, reason: "the workspace root is not a file" })
        return p
      })

    /** Checks the size cap and the quota, then stores the content; returns its hash. */
    const storeContent = (relative: string, content: Uint8Array) =>
      Effect.gen(function* () {
        if (content.length > config.fileMaxBytes) {
          return yield* new FileTooLarge({ path: relative, size: content.length, limit: config.fileMaxBytes })
        }
        const projectId = yield* CurrentProject
        const hash = sha256(content)
        if (!(yield* repo.blobExists(hash))) {
          let used = yield* repo.usedBytes
          if (used + content.length > config.fileQuotaBytes) {
            yield* retention.prune
            used = yield* repo.usedBytes
          }
          if (used + content.length > config.fileQuotaBytes) {
            return yield* new QuotaExceeded({ used, needed: content.length, limit: config.fileQuotaBytes })
          }
          yield* blobs.put(projectId, hash, content)
          yield* repo.insertBlob(hash, content.length, yield* Clock.currentTimeMillis)
        }
        return hash
      })

    /** Records a version (content already stored, `hash` null for a deletion) and publishes FileChanged. */
    const record = (v: {
      readonly path: string
      readonly hash: string | null
      readonly size: number
      readonly author: FileAuthor
      readonly prevId: number | null
      readonly mtimeMs: number | null
    }) =>
      Effect.gen(function* () {
        const projectId = yield* CurrentProject
        const createdAt = yield* Clock.currentTimeMillis
        const rec = yield* repo.insertVersion({
          path: v.path,
          hash: v.hash,
          size: v.size,
          author: v.author,
          prevId: v.prevId,
          diskMtime: v.mtimeMs === null ? null : settled(v.mtimeMs),
          createdAt
        })
        yield* bus.publish(projectId, { _tag: "FileChanged", path: v.path, version: rec.version, author: v.author })
        return rec
      })

    /**
     * Compares the disk with the latest recorded version of the path and records an `external`
     * version when they differ (a deletion when the file is gone). A file never recorded is
     * captured only when `captureUnrecorded` (before the hub first overwrites it, so a revert can
     * bring it back). `keep` stores a content found on disk, or declines (none) to leave it unrecorded.
     */
    const syncWith = <E>(
      p: WorkspacePath,
      captureUnrecorded: boolean,
      keep: (relative: string, content: Uint8Array) => Effect.Effect<Option.Option<string>, E, CurrentProject | SqlClient.SqlClient>
    ): Effect.Effect<Synced, E, CurrentProject | SqlClient.SqlClient> =>
      Effect.gen(function* () {
        const latest = yield* repo.latest(p.relative)
        const disk = yield* observe(p.absolute)
        const last = Option.getOrUndefined(latest)
        if (disk.kind !== "file") {
          if (last === undefined || last.version.deleted) return { latest, external: false, disk, content: undefined }
          const rec = yield* record({ path: p.relative, hash: null, size: 0, author: external, prevId: last.version.id, mtimeMs: null })
          return { latest: Option.some(rec), external: true, disk, content: undefined }
        }
        if (last !== undefined && !last.version.deleted && last.version.size === disk.size && last.diskMtime === disk.mtimeMs) {
          return { latest, external: false, disk, content: undefined }
        }
        if (last === undefined && !captureUnrecorded) return { latest, external: false, disk, content: undefined }
        const content = yield* Effect.sync((): Uint8Array => fs.readFileSync(p.absolute))
        const hash = sha256(content)
        if (last !== undefined && !last.version.deleted && last.version.hash === hash) {
          const mtime = settled(disk.mtimeMs)
          if (mtime !== last.diskMtime) yield* repo.setDiskMtime(last.version.id, mtime)
          return { latest, external: false, disk, content }
        }
        const stored = yield* keep(p.relative, content)
        if (Option.isNone(stored)) return { latest, external: false, disk, content }
        const rec = yield* record({
          path: p.relative,
          hash: stored.value,
          size: content.length,
          author: external,
          prevId: last?.version.id ?? null,
          mtimeMs: disk.mtimeMs
        })
        return { latest: Option.some(rec), external: true, disk, content }
      })

    /** Before a write: any disk change, and a file never recorded, is recorded; a content over the cap or quota fails. */
    const syncForWrite = (p: WorkspacePath) => syncWith(p, true, (relative, content) => Effect.map(storeContent(relative, content), Option.some))

    /** Before a read, revert or restore: changes to recorded files are recorded when they fit the cap and quota. */
    const syncForRead = (p: WorkspacePath) =>
      syncWith(p, false, (relative, content) =>
        storeContent(relative, content).pipe(
          Effect.map(Option.some),
          Effect.catchTags({ FileTooLarge: () => Effect.succeedNone, QuotaExceeded: () => Effect.succeedNone })
        )
      )

    /** Puts a content on disk (creating parent directories), or removes the file for `null`; returns the new mtime. */
    const applyToDisk = (p: WorkspacePath, content: Uint8Array | null) =>
      Effect.sync((): number | null => {
        if (content === null) {
          fs.rmSync(p.absolute, { force: true })
          return null
        }
        fs.mkdirSync(path.dirname(p.absolute), { recursive: true })
        fs.writeFileSync(p.absolute, content)
        return fs.statSync(p.absolute).mtimeMs
      })

    return { exclusive, resolve, storeContent, record, syncForWrite, syncForRead, applyToDisk } as const
  }),
  dependencies: [FilesRepo.Default, Blobs.Default, WorkspaceGuard.Default, Retention.Default]
}) {}
