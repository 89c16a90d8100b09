import { Clock, Duration, Effect, Option, Stream, type SubscriptionRef } from "effect"

/**
 * Resolves with `f`'s first defined answer about the ref's value, re-asked on every change (no
 * polling, no sleeping); fails after `timeout` naming `what`.
 */
export const untilRef = <S, A>(
  ref: SubscriptionRef.SubscriptionRef<S>,
  what: string,
  f: (state: S) => A | undefined,
  timeout: Duration.DurationInput
) =>
  ref.changes.pipe(
    Stream.map(f),
    Stream.filter((a): a is A => a !== undefined),
    Stream.runHead,
    Effect.map(Option.getOrThrow),
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error(`timed out waiting for ${what}`) })
  )

/**
 * Re-runs `check` every `interval` until it answers (anything but `undefined` or `false`); dies
 * after `timeout` naming `what`. For state that publishes no change to wait on (a file, a child
 * process, another process's database); the deadline and the pauses follow the Clock.
 */
export const pollUntil = <A, E, R>(
  what: string,
  check: Effect.Effect<A | undefined | false, E, R>,
  options: { readonly timeout?: Duration.DurationInput; readonly interval?: Duration.DurationInput } = {}
): Effect.Effect<Exclude<A, undefined | false>, E, R> =>
  Effect.gen(function* () {
    const timeout = Duration.decode(options.timeout ?? "10 seconds")
    const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(timeout)
    for (;;) {
      const value = yield* check
      if (value !== undefined && value !== false) return value as Exclude<A, undefined | false>
      if ((yield* Clock.currentTimeMillis) > deadline)
        return yield* Effect.dieMessage(`timed out after ${Duration.format(timeout)} waiting for ${what}`)
      yield* Effect.sleep(options.interval ?? "20 millis")
    }
  })
