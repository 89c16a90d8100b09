import { Clock, Deferred, Effect } from "effect"
import { FileLock } from "../domain/File.js"
import type { MessageId, ProjectId, SessionId } from "../domain/Ids.js"

interface Held {
  readonly sessionId: SessionId
  readonly messageId: MessageId
  readonly expiresAt: number
}

/**
 * Edit locks on workspace paths, held by sessions while their turn runs. They live in memory only,
 * so a restarted hub starts with none. A lock lapses at `expiresAt` (renewed by each write of its
 * holder) and is released when the holder's turn ends. Waiters are woken by every release.
 */
export class FileLocks extends Effect.Service<FileLocks>()("kiris/FileLocks", {
  sync: () => {
    const byProject = new Map<ProjectId, Map<string, Held>>()
    let released = Effect.runSync(Deferred.make<void>())

    const live = (projectId: ProjectId, now: number) => {
      const held = byProject.get(projectId)
      if (held === undefined) return undefined
      for (const [p, h] of held) if (h.expiresAt <= now) held.delete(p)
      return held
    }

    const wake = () => {
      const previous = released
      released = Effect.runSync(Deferred.make<void>())
      Effect.runSync(Deferred.succeed(previous, undefined))
    }

    /** The session holding the path now, if any. */
    const holderOf = (projectId: ProjectId, path: string) => Effect.map(Clock.currentTimeMillis, (now) => live(projectId, now)?.get(path))

    /** Takes or renews the lock for the session unless another session holds it; returns that holder. */
    const take = (projectId: ProjectId, path: string, sessionId: SessionId, messageId: MessageId, ttlMs: number) =>
      Effect.map(Clock.currentTimeMillis, (now): Held | undefined => {
        let held = live(projectId, now)
        const current = held?.get(path)
        if (current !== undefined && current.sessionId !== sessionId) return current
        if (held === undefined) {
          held = new Map()
          byProject.set(projectId, held)
        }
        held.set(path, { sessionId, messageId, expiresAt: now + ttlMs })
        return undefined
      })

    /** Completes at the next release (or at once when one happened since `signal` was read). */
    const signal = Effect.sync(() => Deferred.await(released))

    const release = (projectId: ProjectId, holder: { readonly sessionId: SessionId; readonly messageId?: MessageId | undefined }) =>
      Effect.sync(() => {
        const held = byProject.get(projectId)
        if (held === undefined) return
        let any = false
        for (const [p, h] of held) {
          if (h.sessionId === holder.sessionId && (holder.messageId === undefined || h.messageId === holder.messageId)) {
            held.delete(p)
            any = true
          }
        }
        if (held.size === 0) byProject.delete(projectId)
        if (any) wake()
      })

    const list = (projectId: ProjectId) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const held = live(projectId, now)
        if (held === undefined) return []
        return [...held]
          .map(([path, h]) => FileLock.make({ path, sessionId: h.sessionId, messageId: h.messageId, expiresAt: h.expiresAt }))
          .sort((a, b) => a.path.localeCompare(b.path))
      })

    return { holderOf, take, signal, release, list } as const
  }
}) {}
