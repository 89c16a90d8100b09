import { type Duration, Effect, Option, Stream, type SubscriptionRef } from "effect"

/**
 * Resolves with `f`'s first defined answer about the ref's value, re-asked on every change (no
 * polling, no sleeping); fails after `timeout` naming `what`.
 */
export const untilRef = <S, A>(ref: SubscriptionRef.SubscriptionRef<S>, what: string, f: (state: S) => A | undefined, timeout: Duration.DurationInput) =>
  ref.changes.pipe(
    Stream.map(f),
    Stream.filter((a): a is A => a !== undefined),
    Stream.runHead,
    Effect.map(Option.getOrThrow),
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error(`timed out waiting for ${what}`) })
  )
