import { type Deferred, Effect, Option, Ref } from "effect"
import type { Principal } from "../domain/Auth.js"
import type { SessionId } from "../domain/Ids.js"
import type { SteeredPrompt, TurnOutcome } from "./TurnRunner.js"

/** A turn about to run: its user message is stored; `done` hears how it ended. */
export interface Pending {
  readonly caller: Principal
  readonly done?: Deferred.Deferred<TurnOutcome>
}

export interface Active {
  /** Set before the turn is interrupted on purpose, so it ends `cancelled` rather than `interrupted`. */
  readonly cancelled: Ref.Ref<boolean>
}

export type Steered = SteeredPrompt & { readonly caller: Principal }

/**
 * The Orchestrator's per-session bookkeeping: each session's lock, its active turn, and the prompts
 * steered into that turn which no turn has taken yet.
 */
export const makeSessionTurns = Effect.gen(function* () {
  const active = yield* Ref.make(new Map<SessionId, Active>())
  const locks = new Map<SessionId, Effect.Semaphore>()
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

  const withLock = (sessionId: SessionId) => {
    let lock = locks.get(sessionId)
    if (lock === undefined) {
      lock = Effect.unsafeMakeSemaphore(1)
      locks.set(sessionId, lock)
    }
    return lock.withPermits(1)
  }
  const dropLock = (sessionId: SessionId) => {
    locks.delete(sessionId)
  }
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

  return { takeSteered, addSteered, withLock, dropLock, dropSteered, activeTurn, setActive } as const
})
