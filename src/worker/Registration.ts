import { Effect, Option, Ref, Schedule, Stream, SubscriptionRef } from "effect"
import type { WorkerId } from "../domain/Ids.js"
import { isTransport } from "./HubErrors.js"

/** A refusal worth one more try: the registration changed while the call was on its way. */
class Again<E> {
  constructor(readonly error: E) {}
}

/**
 * The worker's registration with the hub: its id (kept across reconnects) and the current
 * registration's number (one more on every `Registered`; 0 while not registered). Calls on a lease
 * are accepted only from the connection the worker is registered on, so they wait for one.
 */
export const makeRegistration = Effect.gen(function* () {
  const workerId = yield* Ref.make<WorkerId | undefined>(undefined)
  /** The current registration's number (one more on every `Registered`); 0 while not registered. */
  const session = yield* SubscriptionRef.make(0)
  let sessions = 0
  /** The number of the next registration. */
  const nextSession = () => ++sessions

  /** Waits until the worker is registered on the current connection; its session number and id. */
  const registered = Effect.gen(function* () {
    const n = yield* session.changes.pipe(
      Stream.filter((n) => n > 0),
      Stream.runHead,
      Effect.map(Option.getOrElse(() => 0))
    )
    return { n, id: (yield* Ref.get(workerId))! }
  })
  const sessionChanged = (n: number) => Effect.map(SubscriptionRef.get(session), (now) => now !== n)

  /**
   * A call on a leased task, made once registered. A refusal while the session changed may come
   * from a connection not yet registered again: the call is made again (at most twice more).
   */
  const asWorker = <A, E>(call: (id: WorkerId) => Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.flatMap(registered, ({ id, n }) =>
      call(id).pipe(
        Effect.catchAll((e) =>
          isTransport(e) ? Effect.fail(e) : Effect.flatMap(sessionChanged(n), (changed) => Effect.fail(changed ? new Again(e) : e))
        )
      )
    ).pipe(
      Effect.retry({ schedule: Schedule.recurs(2), while: (e) => e instanceof Again }),
      Effect.catchIf(
        (e): e is Again<E> => e instanceof Again,
        (again) => Effect.fail(again.error)
      )
    )

  return { workerId, session, nextSession, registered, sessionChanged, asWorker } as const
})

export type Registration = Effect.Effect.Success<typeof makeRegistration>
