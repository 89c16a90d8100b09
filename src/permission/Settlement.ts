import { Deferred, Effect, Option, Ref } from "effect"
import type { PermissionRequestId, ProjectId } from "../domain/Ids.js"
import type { PermissionRequest } from "../domain/Permission.js"
import type { EventBus } from "../events/EventBus.js"
import { permissionResolved } from "../inbox/InboxItems.js"
import type { PermissionRepo, Resolution } from "./PermissionRepo.js"

export type Verdict = { readonly allowed: true } | { readonly allowed: false; readonly reason: string }

/** The waiter of each request asked by this hub: completed with the verdict once the request is resolved. */
export type Waiters = Ref.Ref<Map<PermissionRequestId, Deferred.Deferred<Verdict>>>

/**
 * Resolving a stored request: the row is settled once (the first resolution wins), the waiter of
 * this hub (if any) hears the verdict, and clients are told by `PermissionReplied`.
 */
export const makeSettlement = (deps: { readonly repo: PermissionRepo; readonly bus: EventBus; readonly waiters: Waiters }) => {
  const { bus, repo, waiters } = deps
  const publishReplied = (projectId: ProjectId, r: PermissionRequest) =>
    Effect.gen(function* () {
      yield* bus.publish(projectId, {
        _tag: "PermissionReplied",
        requestId: r.id,
        sessionId: r.sessionId,
        status: r.status,
        reply: r.reply,
        repliedBy: r.repliedBy
      })
      const resolved = permissionResolved(r.id, r.status)
      if (resolved !== undefined) yield* bus.publish(projectId, resolved)
    })

  /** Wakes the waiter of a request that was just resolved (if this hub has one) and tells clients. */
  const wake = (projectId: ProjectId, resolved: PermissionRequest, verdict: Verdict) =>
    Effect.gen(function* () {
      const waiter = (yield* Ref.get(waiters)).get(resolved.id)
      if (waiter !== undefined) yield* Deferred.succeed(waiter, verdict)
      yield* publishReplied(projectId, resolved)
    })

  const settle = (projectId: ProjectId, id: PermissionRequestId, resolution: Resolution, verdict: Verdict) =>
    Effect.uninterruptible(
      Effect.tap(repo.resolve(id, resolution), (resolved) => (Option.isSome(resolved) ? wake(projectId, resolved.value, verdict) : Effect.void))
    )

  /** Expires still-pending requests whose asker is gone; returns those it expired. */
  const expireAll = (projectId: ProjectId, open: ReadonlyArray<PermissionRequest>, reason: string) =>
    Effect.map(
      Effect.forEach(open, (r) =>
        settle(projectId, r.id, { status: "expired", reply: null, message: reason, repliedBy: null }, { allowed: false, reason })
      ),
      (settled) => settled.flatMap((o) => (Option.isSome(o) ? [o.value] : []))
    )

  return { publishReplied, wake, settle, expireAll } as const
}

export type Settlement = ReturnType<typeof makeSettlement>
