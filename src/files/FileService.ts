import type { SqlClient } from "@effect/sql"
import { Clock, Duration, Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ServerConfig } from "../config/ServerConfig.js"
import { Conflict, NotFound, type WorkspaceUnreachable } from "../domain/Errors.js"
import {
  type FileAuthor,
  FileDiff,
  FileEntry,
  FileHistoryPage,
  type FileLock,
  FileLocked,
  type FileSnapshot,
  type FileTooLarge,
  type FileVersion,
  PathRefused,
  type QuotaExceeded,
  type RevertConflict,
  type RevertRequester,
  type RevertResult
} from "../domain/File.js"
import type { MessageId, SessionId } from "../domain/Ids.js"
import { reachableWorkspace } from "../project/WorkspacePolicy.js"
import { CurrentProject } from "../storage/ProjectDb.js"
import { WorkspaceGuard } from "../tools/WorkspaceGuard.js"
import { Blobs } from "./Blobs.js"
import { isBinary, unifiedDiff } from "./FileDiff.js"
import { FileLocks } from "./FileLocks.js"
import { FilesRepo } from "./FilesRepo.js"
import { FileStore, observe } from "./FileStore.js"
import { Retention } from "./Retention.js"
import { FileRevert } from "./Revert.js"

/** What every method needs: the project's database scope (ProjectDb.withProject). */
export type FileEnv = SqlClient.SqlClient | CurrentProject

const DEFAULT_PAGE = 50
const MAX_PAGE = 1000
/** Deepest chain of parent sessions looked through when a sub-agent writes a path its parent holds. */
const MAX_DEPTH = 16

const utf8 = new TextDecoder("utf-8")

/** A recorded path as clients name it: relative, `/`-separated, without `./`. */
const normalize = (input: string) => {
  const p = path.posix
    .normalize(input.replace(/\\/g, "/"))
    .replace(/^(\.\/)+/, "")
    .replace(/\/+$/, "")
  return p === "" ? "." : p
}

export interface FileServiceShape {
  readonly write: (input: {
    readonly workspace: string
    readonly path: string
    readonly content: Uint8Array
    readonly author: FileAuthor
    /** When given, the write fails `Conflict` unless the path's latest version (after noticing disk changes) has this id (0: none). */
    readonly expectedVersion?: number | undefined
  }) => Effect.Effect<FileVersion, FileLocked | FileTooLarge | QuotaExceeded | PathRefused | Conflict | WorkspaceUnreachable, FileEnv>
  readonly read: (input: {
    readonly workspace: string
    readonly path: string
    readonly version?: number | undefined
  }) => Effect.Effect<{ readonly version: FileVersion | null; readonly content: Uint8Array }, NotFound | PathRefused | WorkspaceUnreachable, FileEnv>
  readonly list: (input: {
    readonly workspace: string
    readonly dir?: string | undefined
  }) => Effect.Effect<ReadonlyArray<FileEntry>, NotFound | PathRefused | WorkspaceUnreachable, FileEnv>
  readonly history: (input: {
    readonly path: string
    readonly cursor?: number | undefined
    readonly limit?: number | undefined
  }) => Effect.Effect<FileHistoryPage, never, FileEnv>
  readonly diff: (input: { readonly path: string; readonly from: number; readonly to: number }) => Effect.Effect<FileDiff, NotFound, FileEnv>
  readonly snapshot: (input: { readonly label: string; readonly author: FileAuthor }) => Effect.Effect<FileSnapshot, never, FileEnv>
  readonly snapshots: () => Effect.Effect<ReadonlyArray<FileSnapshot>, never, FileEnv>
  readonly restore: (input: {
    readonly workspace: string
    readonly snapshotId: number
    readonly author: RevertRequester
    readonly force?: boolean | undefined
  }) => Effect.Effect<RevertResult, NotFound | RevertConflict | PathRefused | WorkspaceUnreachable, FileEnv>
  readonly revertSession: (input: {
    readonly workspace: string
    readonly sessionId: SessionId
    readonly toMessageId?: MessageId | undefined
    readonly author: RevertRequester
    readonly force?: boolean | undefined
  }) => Effect.Effect<RevertResult, NotFound | RevertConflict | PathRefused, FileEnv>
  readonly locks: () => Effect.Effect<ReadonlyArray<FileLock>, never, FileEnv>
  readonly releaseLocks: (holder: {
    readonly sessionId: SessionId
    readonly messageId?: MessageId | undefined
  }) => Effect.Effect<void, never, FileEnv>
  readonly prune: () => Effect.Effect<{ readonly versions: number; readonly blobs: number; readonly snapshots: number }, never, FileEnv>
}

/**
 * Versioned workspace files of a project. Every write through the hub records a version (content
 * stored once per sha256 next to the project's database); changes made on disk behind the hub's
 * back are noticed (size+mtime, then hash) and recorded as `external` versions before anything
 * overwrites them; a session's write takes an edit lock on the path for its turn; a session's
 * changes can be reverted and every revert undone (see FileRevert). All methods run in the
 * project's database scope.
 */
export class FileService extends Effect.Service<FileService>()("kiris/FileService", {
  effect: Effect.gen(function* () {
    const config = yield* ServerConfig
    const store = yield* FileStore
    const repo = yield* FilesRepo
    const blobs = yield* Blobs
    const locks = yield* FileLocks
    const reverts = yield* FileRevert
    const retention = yield* Retention
    const guard = yield* WorkspaceGuard

    const isAncestor = (candidate: SessionId, of: SessionId) =>
      Effect.gen(function* () {
        let current: SessionId | null = of
        for (let i = 0; i < MAX_DEPTH && current !== null; i++) {
          current = yield* repo.parentOf(current)
          if (current === candidate) return true
        }
        return false
      })

    /**
     * A session takes (or renews) the path's lock; a user only checks it. A lock another session
     * holds is waited for up to `fileLockWaitMs` (woken by releases), then the write fails
     * `FileLocked`. A sub-agent may write what one of its parent sessions holds.
     */
    const acquire = (relative: string, author: FileAuthor) =>
      Effect.gen(function* () {
        if (author.kind !== "session" && author.kind !== "user") return
        const projectId = yield* CurrentProject
        const deadline = (yield* Clock.currentTimeMillis) + config.fileLockWaitMs
        for (;;) {
          const released = yield* locks.signal
          const holder =
            author.kind === "session"
              ? yield* locks.take(projectId, relative, author.sessionId, author.messageId, config.fileLockTtl * 1000)
              : yield* locks.holderOf(projectId, relative)
          if (holder === undefined) return
          if (author.kind === "session" && (yield* isAncestor(holder.sessionId, author.sessionId))) return
          const now = yield* Clock.currentTimeMillis
          if (now >= deadline) return yield* new FileLocked({ path: relative, holder: holder.sessionId })
          yield* Effect.timeoutOption(released, Duration.millis(Math.max(1, Math.min(deadline, holder.expiresAt) - now)))
        }
      })

    /** Every operation on the workspace's files first checks that this hub can reach the workspace. */
    const reachable = (workspace: string) => Effect.flatMap(CurrentProject, (projectId) => reachableWorkspace(projectId, workspace))

    const write: FileServiceShape["write"] = (input) =>
      Effect.gen(function* () {
        yield* reachable(input.workspace)
        const p = yield* store.resolve(input.workspace, input.path)
        if ((yield* observe(p.absolute)).kind === "dir") {
          return yield* new PathRefused({ path: input.path, reason: `${p.relative} is a directory` })
        }
        yield* acquire(p.relative, input.author)
        return yield* store.exclusive(
          Effect.gen(function* () {
            const synced = yield* store.syncForWrite(p)
            const latest = Option.getOrUndefined(synced.latest)
            if (input.expectedVersion !== undefined && (latest?.version.id ?? 0) !== input.expectedVersion) {
              return yield* new Conflict({
                reason: `${p.relative} is at version ${latest?.version.id ?? 0}, not the expected ${input.expectedVersion}`
              })
            }
            const hash = yield* store.storeContent(p.relative, input.content)
            const mtimeMs = yield* store.applyToDisk(p, input.content)
            const rec = yield* store.record({
              path: p.relative,
              hash,
              size: input.content.length,
              author: input.author,
              prevId: latest?.version.id ?? null,
              mtimeMs
            })
            yield* retention.afterWrite(p.relative)
            return rec.version
          })
        )
      }).pipe(Effect.withSpan("FileService.write"))

    const read: FileServiceShape["read"] = (input) =>
      Effect.gen(function* () {
        const projectId = yield* CurrentProject
        if (input.version !== undefined) {
          const rec = yield* repo.byId(input.version)
          const relative = normalize(input.path)
          if (Option.isNone(rec) || rec.value.version.path !== relative) {
            return yield* new NotFound({ entity: "file version", id: `${relative}@${input.version}` })
          }
          const v = rec.value.version
          return { version: v, content: v.hash === null ? new Uint8Array(0) : yield* blobs.get(projectId, v.hash) }
        }
        yield* reachable(input.workspace)
        const p = yield* store.resolve(input.workspace, input.path)
        const synced = yield* store.exclusive(store.syncForRead(p))
        if (synced.disk.kind === "dir") return yield* new PathRefused({ path: input.path, reason: `${p.relative} is a directory` })
        if (synced.disk.kind === "missing") return yield* new NotFound({ entity: "file", id: p.relative })
        const content = synced.content ?? (yield* Effect.sync((): Uint8Array => fs.readFileSync(p.absolute)))
        return { version: Option.getOrNull(Option.map(synced.latest, (r) => r.version)), content }
      }).pipe(Effect.withSpan("FileService.read"))

    const list: FileServiceShape["list"] = (input) =>
      Effect.gen(function* () {
        const projectId = yield* CurrentProject
        yield* reachable(input.workspace)
        const dir = input.dir === undefined || normalize(input.dir) === "." ? undefined : input.dir
        const fence = yield* guard.fenceFor(projectId, input.workspace)
        const base =
          dir === undefined
            ? yield* Effect.try({
                try: () => ({ absolute: fs.realpathSync.native(input.workspace), relative: "." }),
                catch: () => new PathRefused({ path: ".", reason: `the project workspace does not exist: ${input.workspace}` })
              })
            : yield* store.resolve(input.workspace, dir)
        const disk = yield* observe(base.absolute)
        if (disk.kind === "missing") return yield* new NotFound({ entity: "directory", id: base.relative })
        if (disk.kind !== "dir") return yield* new PathRefused({ path: input.dir ?? ".", reason: `${base.relative} is not a directory` })
        const entries = yield* Effect.sync(() => {
          const out: Array<{ name: string; path: string; type: "file" | "dir"; size: number }> = []
          for (const d of fs.readdirSync(base.absolute, { withFileTypes: true })) {
            const absolute = path.join(base.absolute, d.name)
            if (fence.hides(absolute)) continue
            const st = fs.statSync(absolute, { throwIfNoEntry: false })
            if (st === undefined) continue
            const rel = base.relative === "." ? d.name : `${base.relative}/${d.name}`
            out.push({ name: d.name, path: rel, type: st.isDirectory() ? "dir" : "file", size: st.isDirectory() ? 0 : st.size })
          }
          return out
        })
        const latest = yield* repo.latestIds(entries.filter((e) => e.type === "file").map((e) => e.path))
        return entries
          .sort((a, b) => (a.type === b.type ? a.name.localeCompare(b.name) : a.type === "dir" ? -1 : 1))
          .map((e) => FileEntry.make({ ...e, latestVersion: latest.get(e.path) ?? null }))
      }).pipe(Effect.withSpan("FileService.list"))

    const history: FileServiceShape["history"] = (input) =>
      Effect.gen(function* () {
        const limit = Math.max(1, Math.min(MAX_PAGE, Math.floor(input.limit ?? DEFAULT_PAGE)))
        const rows = yield* repo.history(normalize(input.path), input.cursor, limit)
        const page = rows.slice(0, limit).map((r) => r.version)
        return FileHistoryPage.make({ versions: page, next: rows.length > limit ? page[page.length - 1]!.id : null })
      })

    const diff: FileServiceShape["diff"] = (input) =>
      Effect.gen(function* () {
        const projectId = yield* CurrentProject
        const relative = normalize(input.path)
        const side = (id: number) =>
          Effect.gen(function* () {
            const rec = yield* repo.byId(id)
            if (Option.isNone(rec) || rec.value.version.path !== relative) {
              return yield* new NotFound({ entity: "file version", id: `${relative}@${id}` })
            }
            const v = rec.value.version
            return v.hash === null ? null : yield* blobs.get(projectId, v.hash)
          })
        const before = yield* side(input.from)
        const after = yield* side(input.to)
        const base = { path: relative, from: input.from, to: input.to }
        if ((before !== null && isBinary(before)) || (after !== null && isBinary(after))) {
          return FileDiff.make({ ...base, unified: "", binary: true })
        }
        const unified = unifiedDiff(
          relative,
          { label: `version ${input.from}`, text: before === null ? null : utf8.decode(before) },
          { label: `version ${input.to}`, text: after === null ? null : utf8.decode(after) }
        )
        return FileDiff.make({ ...base, unified: unified ?? `(the diff of ${relative} is too large to compute)\n`, binary: false })
      })

    const currentLocks: FileServiceShape["locks"] = () => Effect.flatMap(CurrentProject, locks.list)

    const releaseLocks: FileServiceShape["releaseLocks"] = (holder) => Effect.flatMap(CurrentProject, (projectId) => locks.release(projectId, holder))

    const prune: FileServiceShape["prune"] = () => store.exclusive(retention.prune)

    return {
      write,
      read,
      list,
      history,
      diff,
      snapshot: reverts.snapshot,
      snapshots: reverts.snapshots,
      restore: (input) => Effect.zipRight(reachable(input.workspace), reverts.restore(input)),
      revertSession: reverts.revertSession,
      locks: currentLocks,
      releaseLocks,
      prune
    } satisfies FileServiceShape
  }),
  dependencies: [
    FileStore.Default,
    FilesRepo.Default,
    Blobs.Default,
    FileLocks.Default,
    FileRevert.Default,
    Retention.Default,
    WorkspaceGuard.Default
  ]
}) {}
