import { Clock, Effect } from "effect"

/**
 * A Clock whose time moves only when told (`advance`); sleeping still uses real time. Provide it
 * with `Effect.withClock(manual.clock)` around the calls whose notion of "now" a test controls.
 */
export const makeManualClock = (start = 1_700_000_000_000) => {
  let now = start
  const real = Clock.make()
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => now,
    currentTimeMillis: Effect.sync(() => now),
    unsafeCurrentTimeNanos: () => BigInt(now) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => BigInt(now) * 1_000_000n),
    sleep: (duration) => real.sleep(duration)
  }
  return {
    clock,
    advance: (ms: number) => {
      now += ms
    }
  }
}
