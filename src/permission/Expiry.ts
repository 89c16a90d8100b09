import { Effect } from "effect"
import type { MessageId, ProjectId, SessionId } from "../domain/Ids.js"
import type { ProjectDb } from "../storage/ProjectDb.js"
import type { PermissionRepo } from "./PermissionRepo.js"
import type { Settlement } from "./Settlement.js"

/**
 * Expiring requests whose asker is gone: a deleted session's, an ended turn's, and at hub start-up
 * every pending one. `expireAll` settles each as `expired`, waking its waiter.
 */
export const makeExpiry = (deps: { readonly repo: PermissionRepo; readonly dbs: ProjectDb; readonly expireAll: Settlement["expireAll"] }) => {
  const { dbs, expireAll, repo } = deps

  /** Expires a session's pending requests, waking their waiters; returns how many. */
  const expireSession = Effect.fn("Permission.expireSession")(function* (projectId: ProjectId, sessionId: SessionId, reason: string) {
    return (yield* expireAll(projectId, yield* repo.listPending(sessionId), reason)).length
  })

  /** At the end of a turn (however it ended): expires the requests its message left pending. */
  const expireTurn = Effect.fn("Permission.expireTurn")(function* (projectId: ProjectId, messageId: MessageId, reason: string) {
    return yield* dbs.withProject(projectId)(Effect.flatMap(repo.listPendingForMessage(messageId), (open) => expireAll(projectId, open, reason)))
  })

  /**
   * At hub start-up, before any turn runs: every pending request was asked by a process that is
   * gone, so all of them expire. Returns those it expired.
   */
  const expireOrphans = Effect.fn("Permission.expireOrphans")(function* (projectId: ProjectId, reason: string) {
    return yield* dbs.withProject(projectId)(Effect.flatMap(repo.listPending(undefined), (open) => expireAll(projectId, open, reason)))
  })

  return { expireSession, expireTurn, expireOrphans } as const
}
