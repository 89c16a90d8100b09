import type { SqlClient } from "@effect/sql"
import { Clock, Effect, Option } from "effect"
import { NotFound } from "../domain/Errors.js"
import { type FileAuthor, type FileSnapshot, RevertConflict, type RevertRequester, RevertResult } from "../domain/File.js"
import type { MessageId, SessionId } from "../domain/Ids.js"
import { EventBus } from "../events/EventBus.js"
import { CurrentProject } from "../storage/ProjectDb.js"
import type { WorkspacePath } from "../tools/Workspace.js"
import { Blobs } from "./Blobs.js"
import { FileLocks } from "./FileLocks.js"
import { FilesRepo, type VersionRecord } from "./FilesRepo.js"
import { FileStore } from "./FileStore.js"

/** What one path is brought back to: a recorded version, or absent (the file did not exist). */
interface Target {
  readonly p: WorkspacePath
  readonly to: VersionRecord | null
}

const sameState = (current: VersionRecord | undefined, to: VersionRecord | null) => {
  const currentGone = current === undefined || current.version.deleted
  const targetGone = to === null || to.version.deleted
  return currentGone === targetGone && (currentGone || current!.version.hash === to!.version.hash)
}

/**
 * Snapshots, snapshot restores and session reverts. Every revert or restore first takes an
 * automatic snapshot (its id is in the result): restoring that snapshot undoes it. Changes are
 * written as versions authored `revert`, so they are versioned (and revertible) like any other.
 */
export class FileRevert extends Effect.Service<FileRevert>()("kiris/FileRevert", {
  effect: Effect.gen(function* () {
    const store = yield* FileStore
    const repo = yield* FilesRepo
    const blobs = yield* Blobs
    const locks = yield* FileLocks
    const bus = yield* EventBus

    const snapshotNow = (label: string, author: FileAuthor, auto: boolean): Effect.Effect<FileSnapshot, never, SqlClient.SqlClient> =>
      Effect.flatMap(Clock.currentTimeMillis, (createdAt) => repo.insertSnapshot({ label, author, auto, createdAt }))

    /** Brings each path to its target; paths already there get no new version. */
    const apply = (targets: ReadonlyArray<Target>, author: FileAuthor) =>
      Effect.gen(function* () {
        const projectId = yield* CurrentProject
        const versions: Array<VersionRecord["version"]> = []
        for (const { p, to } of targets) {
          const current = Option.getOrUndefined(yield* repo.latest(p.relative))
          if (to === null || to.version.deleted) {
            yield* store.applyToDisk(p, null)
            if (current === undefined || current.version.deleted) continue
            const rec = yield* store.record({ path: p.relative, hash: null, size: 0, author, prevId: current.version.id, mtimeMs: null })
            versions.push(rec.version)
          } else {
            const content = yield* blobs.get(projectId, to.version.hash!)
            const mtimeMs = yield* store.applyToDisk(p, content)
            const rec = yield* store.record({
              path: p.relative,
              hash: to.version.hash,
              size: content.length,
              author,
              prevId: current?.version.id ?? null,
              mtimeMs
            })
            versions.push(rec.version)
          }
        }
        return versions
      })

    /** Paths another session's turn holds a lock on. */
    const lockedByOthers = (paths: ReadonlyArray<string>, except: SessionId | undefined) =>
      Effect.gen(function* () {
        const projectId = yield* CurrentProject
        const out: Array<string> = []
        for (const path of paths) {
          const holder = yield* locks.holderOf(projectId, path)
          if (holder !== undefined && holder.sessionId !== except) out.push(path)
        }
        return out
      })

    /**
     * The shared end of a restore and a revert: refuses with the conflicts and the paths another
     * session holds locked (unless `force`), snapshots the workspace as it is, brings `targets`
     * back, and announces the paths (`announced` gives the event's ids from the new snapshot's id).
     */
    const carryOut = (plan: {
      readonly targets: ReadonlyArray<Target>
      readonly conflicts: ReadonlyArray<string>
      readonly lockHolder: SessionId | undefined
      readonly force: boolean | undefined
      readonly requester: RevertRequester
      readonly label: string
      readonly announced: (before: number) => { readonly sessionId?: SessionId; readonly snapshotId: number }
    }) =>
      Effect.gen(function* () {
        const locked = yield* lockedByOthers(
          plan.targets.map((t) => t.p.relative),
          plan.lockHolder
        )
        const conflicts = [...plan.conflicts, ...locked]
        if (conflicts.length > 0 && plan.force !== true) return yield* new RevertConflict({ paths: [...new Set(conflicts)].sort() })
        const author: FileAuthor = { kind: "revert", by: plan.requester }
        const before = yield* snapshotNow(plan.label, author, true)
        const versions = yield* apply(plan.targets, author)
        const restored = plan.targets.map((t) => t.p.relative)
        if (restored.length > 0) yield* bus.publish(yield* CurrentProject, { _tag: "FilesReverted", paths: restored, ...plan.announced(before.id) })
        return RevertResult.make({ restored, versions, snapshotId: before.id })
      })

    const snapshot = (input: { readonly label: string; readonly author: FileAuthor }) =>
      store.exclusive(snapshotNow(input.label, input.author, false))

    const snapshots = () => repo.snapshots

    /**
     * Brings every recorded path back to its state in the snapshot (paths first recorded after it
     * are deleted). Refuses with the paths found changed on disk behind the hub's back, or locked
     * by a running turn, unless `force`.
     */
    const restore = (input: {
      readonly workspace: string
      readonly snapshotId: number
      readonly author: RevertRequester
      readonly force?: boolean | undefined
    }) =>
      store
        .exclusive(
          Effect.gen(function* () {
            const snap = yield* repo.snapshotById(input.snapshotId)
            if (Option.isNone(snap)) return yield* new NotFound({ entity: "snapshot", id: String(input.snapshotId) })
            const wanted = new Map((yield* repo.snapshotVersions(input.snapshotId)).map((r) => [r.version.path, r] as const))
            const paths = new Set([...wanted.keys(), ...(yield* repo.allLatest).map((r) => r.version.path)])
            const targets: Array<Target> = []
            const conflicts: Array<string> = []
            for (const path of [...paths].sort()) {
              const p = yield* store.resolve(input.workspace, path)
              const synced = yield* store.syncForRead(p)
              const to = wanted.get(path) ?? null
              if (sameState(Option.getOrUndefined(synced.latest), to)) continue
              if (synced.external) conflicts.push(path)
              targets.push({ p, to })
            }
            return yield* carryOut({
              targets,
              conflicts,
              lockHolder: undefined,
              force: input.force,
              requester: input.author,
              label: `before restoring snapshot ${input.snapshotId}`,
              announced: () => ({ snapshotId: input.snapshotId })
            })
          })
        )
        .pipe(Effect.withSpan("FileRevert.restore"))

    /**
     * Brings every file the session changed (in `toMessageId` and later turns, or in the whole
     * session) back to its state before the session first changed it there; a file it created is
     * deleted. Refuses with the paths whose latest version is not the session's (after recording
     * any change found on disk), or that another session has locked, unless `force`.
     */
    const revertSession = (input: {
      readonly workspace: string
      readonly sessionId: SessionId
      readonly toMessageId?: MessageId | undefined
      readonly author: RevertRequester
      readonly force?: boolean | undefined
    }) =>
      store
        .exclusive(
          Effect.gen(function* () {
            let fromId = 0
            if (input.toMessageId !== undefined) {
              const message = yield* repo.message(input.toMessageId)
              if (Option.isNone(message) || message.value.session_id !== input.sessionId) {
                return yield* new NotFound({ entity: "message", id: input.toMessageId })
              }
              fromId = (yield* repo.firstVersionSince(input.sessionId, Number(message.value.created_at))) ?? Number.MAX_SAFE_INTEGER
            }
            const firsts = new Map<string, VersionRecord>()
            for (const r of yield* repo.sessionVersions(input.sessionId, fromId)) {
              if (!firsts.has(r.version.path)) firsts.set(r.version.path, r)
            }
            const targets: Array<Target> = []
            const conflicts: Array<string> = []
            for (const [path, first] of [...firsts].sort(([a], [b]) => a.localeCompare(b))) {
              const p = yield* store.resolve(input.workspace, path)
              const synced = yield* store.syncForRead(p)
              const author = Option.getOrUndefined(synced.latest)?.version.author
              if (author?.kind !== "session" || author.sessionId !== input.sessionId) conflicts.push(path)
              let to: VersionRecord | null = null
              if (first.prevId !== null) {
                const prev = yield* repo.byId(first.prevId)
                if (Option.isNone(prev)) {
                  return yield* new NotFound({ entity: "file version", id: `${first.prevId} (${path} before the session changed it; pruned)` })
                }
                to = prev.value
              }
              targets.push({ p, to })
            }
            return yield* carryOut({
              targets,
              conflicts,
              lockHolder: input.sessionId,
              force: input.force,
              requester: input.author,
              label: `before reverting session ${input.sessionId}`,
              announced: (before) => ({ sessionId: input.sessionId, snapshotId: before })
            })
          })
        )
        .pipe(Effect.withSpan("FileRevert.revertSession"))

    return { snapshot, snapshots, restore, revertSession } as const
  }),
  dependencies: [FileStore.Default, FilesRepo.Default, Blobs.Default, FileLocks.Default]
}) {}
