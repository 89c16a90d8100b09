import { Effect } from "effect"
import type { ProjectId, SessionId } from "../domain/Ids.js"
import type { EventBus } from "../events/EventBus.js"
import type { Permission } from "../permission/Permission.js"
import type { ProjectsRepo } from "../project/ProjectsRepo.js"
import type { SessionRepo } from "../session/SessionRepo.js"
import type { ProjectDb } from "../storage/ProjectDb.js"

/**
 * Start-up recovery, per project: messages a previous process left running are marked `interrupted`
 * (never re-run) and published as such, every request still pending expires, sessions are
 * published idle, and each session with queued prompts is handed to `resume`.
 *
 * With `settle` (hubs sharing the database, some of them running turns now) nothing is touched
 * project-wide: each session that may need it (running messages, a non-idle status, queued prompts,
 * a runner row) is handed to `settle`, which leaves alone those a live hub runs.
 */
export const recover = <E, R, E2 = never, R2 = never>(deps: {
  readonly projects: ProjectsRepo
  readonly dbs: ProjectDb
  readonly repo: SessionRepo
  readonly bus: EventBus
  readonly permission: Permission
  readonly resume: (projectId: ProjectId, sessionId: SessionId) => Effect.Effect<void, E, R>
  readonly settle?: (projectId: ProjectId, sessionId: SessionId) => Effect.Effect<void, E2, R2>
}) => {
  const { bus, dbs, permission, projects, repo, resume, settle } = deps
  return Effect.gen(function* () {
    for (const project of yield* projects.listAll) {
      if (settle !== undefined) {
        yield* dbs.withProject(project.id)(
          Effect.flatMap(repo.sessionsToRecover, (ids) => Effect.forEach(ids, (id) => settle(project.id, id), { discard: true }))
        )
        continue
      }
      yield* dbs.withProject(project.id)(
        Effect.gen(function* () {
          const interrupted = yield* repo.interruptRunning
          if (interrupted.messages.length > 0) {
            yield* Effect.logInfo(`marked ${interrupted.messages.length} running message(s) interrupted`, { project: project.id })
          }
          yield* bus.publishAll(project.id, [
            ...interrupted.parts.map((part) => ({ _tag: "PartUpdated", part }) as const),
            ...interrupted.messages.map((message) => ({ _tag: "MessageUpdated", message }) as const)
          ])
          yield* permission.expireOrphans(project.id, "the hub restarted before the request was answered")
          yield* bus.publishAll(
            project.id,
            interrupted.sessions.map((sessionId) => ({ _tag: "SessionStatus", sessionId, status: "idle" }) as const)
          )
          for (const sessionId of yield* repo.sessionsWithQueue) {
            yield* resume(project.id, sessionId)
          }
        })
      )
    }
  })
}
