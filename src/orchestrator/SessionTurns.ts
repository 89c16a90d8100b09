import { type Deferred, Effect, Option, Ref } from "effect"
import type { Principal } from "../domain/Auth.js"
import type { ProjectId, SessionId } from "../domain/Ids.js"
import type { SteeredPrompt, TurnOutcome } from "./TurnRunner.js"

/** A turn about to run: its user message is stored; `done` hears how it ended. */
export interface Pending {
  readonly caller: Principal
  readonly done?: Deferred.Deferred<TurnOutcome>
}

export interface Active {
  readonly projectId: ProjectId
  /** Set before the turn is interrupted on purpose, so it ends `cancelled` rather than `interrupted`. */
  readonly cancelled: Ref.Ref<boolean>
}

export type Steered = SteeredPrompt & { readonly caller: Principal }

/** How many sessions each piece of bookkeeping holds: all 0 once every session is idle. */
export interface SessionTurnsSizes {
  readonly locks: number
  readonly active: number
  readonly steered: number
}

interface Lock {
  readonly semaphore: Effect.Semaphore
  /** Fibers holding or waiting for the lock; the lock is dropped when the last one leaves. */
  users: number
}

/**
 * The Orchestrator's per-session bookkeeping: each session's lock, its active turn, and the prompts
 * steered into that turn which no turn has taken yet. Nothing stays behind for an idle session: a
 * lock exists only while someone holds or waits for it, the active turn is cleared when the session
 * goes idle, and steered prompts are removed when taken.
 */
export const makeSessionTurns = Effect.gen(function* () {
  const active = yield* Ref.make(new Map<SessionId, Active>())
  const locks = new Map<SessionId, Lock>()
  /** Prompts steered into a session's running turn (stored as user messages) that no turn has taken yet. */
  const steered = new Map<SessionId, Array<Steered>>()
  const takeSteered = (sessionId: SessionId) =>
    Effect.sync(() => {
      const taken = steered.get(sessionId) ?? []
      steered.delete(sessionId)
      return taken
    })
  /** Adds a prompt steered into the session's running turn (the caller holds the session's lock). */
  const addSteered = (sessionId: SessionId, prompt: Steered) => {
    steered.set(sessionId, [...(steered.get(sessionId) ?? []), prompt])
  }

  /** Runs `self` holding the session's lock (one holder at a time, in arrival order). */
  const withLock =
    (sessionId: SessionId) =>
    <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          let lock = locks.get(sessionId)
          if (lock === undefined) {
            lock = { semaphore: Effect.unsafeMakeSemaphore(1), users: 0 }
            locks.set(sessionId, lock)
          }
          const held = lock
          held.users++
          return restore(held.semaphore.withPermits(1)(self)).pipe(
            Effect.ensuring(
              Effect.sync(() => {
                held.users--
                if (held.users === 0 && locks.get(sessionId) === held) locks.delete(sessionId)
              })
            )
          )
        })
      )
  const dropSteered = (sessionId: SessionId) => {
    steered.delete(sessionId)
  }
  const activeTurn = (sessionId: SessionId) => Effect.map(Ref.get(active), (m) => Option.fromNullable(m.get(sessionId)))
  const setActive = (sessionId: SessionId, turn: Option.Option<Active>) =>
    Ref.update(active, (m) => {
      const next = new Map(m)
      if (Option.isSome(turn)) next.set(sessionId, turn.value)
      else next.delete(sessionId)
      return next
    })
  /** The projects of the sessions whose turns run here. */
  const activeProjects = Effect.map(Ref.get(active), (m) => [...new Set([...m.values()].map((a) => a.projectId))])
  const sizes = Effect.map(Ref.get(active), (m): SessionTurnsSizes => ({ locks: locks.size, active: m.size, steered: steered.size }))

  return { takeSteered, addSteered, withLock, dropSteered, activeTurn, activeProjects, setActive, sizes } as const
})
