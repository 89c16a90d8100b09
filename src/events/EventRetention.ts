import { Clock, Duration, Effect, Schedule } from "effect"
import type { ServerConfigShape } from "../config/ServerConfig.js"
import type { ProjectId } from "../domain/Ids.js"
import { EventLog } from "./EventLog.js"
import type { ProjectLogs } from "./ProjectLogs.js"

type RetentionConfig = Pick<
  ServerConfigShape,
  "eventRetentionDays" | "eventRetentionCount" | "eventDeltaRetentionMinutes" | "eventPruneIntervalSeconds"
>

/**
 * Keeps the projects' event logs to `config`'s retention: a fiber in the caller's scope prunes
 * the logs of projects that published (`touch`) since its last round, every
 * `eventPruneIntervalSeconds`. A log is never pruned while a replay is reading it.
 */
export const makeEventRetention = (config: RetentionConfig, logs: ProjectLogs) =>
  Effect.gen(function* () {
    /** Projects that published since the last pruning round. */
    const touched = new Set<ProjectId>()

    const touch = (projectId: ProjectId) => {
      touched.add(projectId)
    }

    /** Prunes one project's log now (unless a replay is reading it); returns the events dropped. */
    const prune = (projectId: ProjectId, at?: number): Effect.Effect<number> =>
      Effect.flatMap(at === undefined ? Clock.currentTimeMillis : Effect.succeed(at), (now) => {
        const log = logs.of(projectId)
        if (log.deleted) return Effect.succeed(0)
        return logs.locked(
          projectId,
          log,
          log.replays > 0
            ? Effect.succeed(0)
            : EventLog.prune({
                before: now - config.eventRetentionDays * 86_400_000,
                keep: config.eventRetentionCount,
                deltasBefore: now - config.eventDeltaRetentionMinutes * 60_000
              })
        )
      })

    const pruneTouched = Effect.suspend(() => {
      const projects = [...touched]
      touched.clear()
      return Effect.forEach(
        projects,
        (id) => Effect.catchAllCause(prune(id), (cause) => Effect.logWarning("event log pruning failed", { project: id, cause })),
        {
          discard: true
        }
      )
    })

    yield* pruneTouched.pipe(
      Effect.repeat(Schedule.spaced(Duration.millis(Math.max(1000, config.eventPruneIntervalSeconds * 1000)))),
      Effect.delay(Duration.millis(Math.max(1000, config.eventPruneIntervalSeconds * 1000))),
      Effect.forkScoped
    )

    return { touch, prune } as const
  })
