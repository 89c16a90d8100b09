import { Clock, Effect } from "effect"
import { ServerConfig } from "../config/ServerConfig.js"
import { CurrentProject } from "../storage/ProjectDb.js"
import { Blobs } from "./Blobs.js"
import { FilesRepo } from "./FilesRepo.js"

const DAY_MS = 24 * 3600 * 1000

/**
 * Pruning of old file versions. For each path Kiris keeps the latest `fileKeepVersions` versions
 * and drops versions older than `fileKeepDays` days, except that it never removes: the latest
 * version of a path; a version a snapshot refers to; a version written by the latest writing turn
 * of a session, or the version such a write replaced (so that turn can still be reverted).
 * Automatic snapshots (taken before each revert or restore) older than `fileKeepDays` are dropped
 * first; snapshots taken on request are kept until deleted. Contents no version refers to any
 * more are then deleted from the blob store.
 *
 * A path is pruned as it is written, once it holds a tenth more versions than it keeps, so a file
 * rewritten thousands of times stays bounded on disk; the whole project is pruned when a write
 * would exceed the quota, and on request.
 */
export class Retention extends Effect.Service<Retention>()("kiris/FileRetention", {
  effect: Effect.gen(function* () {
    const config = yield* ServerConfig
    const repo = yield* FilesRepo
    const blobs = yield* Blobs
    const keep = Math.max(1, config.fileKeepVersions)
    const slack = Math.max(1, Math.ceil(keep / 10))
    const cutoff = Effect.map(Clock.currentTimeMillis, (now) => now - config.fileKeepDays * DAY_MS)

    /** Deletes the candidates no session still needs for a revert, then the contents nothing refers to. */
    const remove = (candidates: ReadonlyArray<number>) =>
      Effect.gen(function* () {
        const projectId = yield* CurrentProject
        const spared = candidates.length === 0 ? new Set<number>() : yield* repo.latestTurnVersions
        const doomed = candidates.filter((id) => !spared.has(id))
        yield* repo.deleteVersions(doomed)
        const orphans = doomed.length === 0 ? [] : yield* repo.orphanBlobs
        for (const hash of orphans) yield* blobs.remove(projectId, hash)
        yield* repo.deleteBlobs(orphans)
        return { versions: doomed.length, blobs: orphans.length }
      })

    const prune = Effect.gen(function* () {
      const before = yield* cutoff
      const snapshots = yield* repo.deleteAutoSnapshots(before)
      const removed = yield* remove(yield* repo.pruneCandidates(keep, before))
      return { ...removed, snapshots }
    }).pipe(Effect.withSpan("FileRetention.prune"))

    /** After a write of `path`: prunes that path when it has grown past what it keeps. */
    const afterWrite = (path: string) =>
      Effect.gen(function* () {
        if ((yield* repo.versionCount(path)) <= keep + slack) return
        yield* remove(yield* repo.pathPruneCandidates(path, keep, yield* cutoff))
      })

    return { prune, afterWrite } as const
  }),
  dependencies: [FilesRepo.Default, Blobs.Default]
}) {}
