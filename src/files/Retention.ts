import { Effect } from "effect"
import { ServerConfig } from "../config/ServerConfig.js"
import { CurrentProject } from "../storage/ProjectDb.js"
import { Blobs } from "./Blobs.js"
import { FilesRepo } from "./FilesRepo.js"

const DAY_MS = 24 * 3600 * 1000

/**
 * Pruning of old file versions. A version is removed only when all of these hold: it is not the
 * latest of its path; `fileKeepVersions` newer versions of its path exist; it is older than
 * `fileKeepDays`; no snapshot refers to it; and it is neither written by the latest writing turn
 * of a session nor the version such a write replaced (so that turn can still be reverted).
 * Automatic snapshots (taken before each revert or restore) older than `fileKeepDays` are dropped
 * first; snapshots taken on request are kept until deleted. Contents no version refers to any
 * more are then deleted from the blob store.
 */
export class Retention extends Effect.Service<Retention>()("kiris/FileRetention", {
  effect: Effect.gen(function* () {
    const config = yield* ServerConfig
    const repo = yield* FilesRepo
    const blobs = yield* Blobs

    const prune = Effect.gen(function* () {
      const projectId = yield* CurrentProject
      const cutoff = Date.now() - config.fileKeepDays * DAY_MS
      const snapshots = yield* repo.deleteAutoSnapshots(cutoff)
      const candidates = yield* repo.pruneCandidates(Math.max(1, config.fileKeepVersions), cutoff)
      const spared = candidates.length === 0 ? new Set<number>() : yield* repo.latestTurnVersions
      const doomed = candidates.filter((id) => !spared.has(id))
      yield* repo.deleteVersions(doomed)
      const orphans = yield* repo.orphanBlobs
      for (const hash of orphans) yield* blobs.remove(projectId, hash)
      yield* repo.deleteBlobs(orphans)
      return { versions: doomed.length, blobs: orphans.length, snapshots }
    }).pipe(Effect.withSpan("FileRetention.prune"))

    return { prune } as const
  }),
  dependencies: [FilesRepo.Default, Blobs.Default]
}) {}
