import { Duration, Effect, Schedule } from "effect"

/** Telling a hub call that failed in transport (the hub is away) from one the hub refused, and retrying the former. */

export const isTransport = (e: unknown) => typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "RpcClientError"

/** The deepest `code` (ECONNREFUSED, …) in a chain of causes. */
const errorCode = (e: unknown): string | undefined => {
  for (let c = e, depth = 0; typeof c === "object" && c !== null && depth < 5; c = (c as { cause?: unknown }).cause, depth++) {
    const code = (c as { code?: unknown }).code
    if (typeof code === "string") return code
  }
  return undefined
}

export const describe = (e: unknown): string => {
  if (typeof e !== "object" || e === null) return String(e)
  if (isTransport(e)) return errorCode(e) ?? "connection failed"
  const tagged = e as { _tag?: string; message?: unknown; reason?: unknown }
  const detail = typeof tagged.reason === "string" ? tagged.reason : typeof tagged.message === "string" ? tagged.message : ""
  return tagged._tag === undefined ? detail : detail === "" ? tagged._tag : `${tagged._tag}: ${detail}`
}

/** Retries hub calls that failed in transport (the hub is away) with backoff, for at most `forMs`. */
export const retryTransport = <A, E, R>(effect: Effect.Effect<A, E, R>, forMs: number) =>
  effect.pipe(
    Effect.retry({
      schedule: Schedule.exponential("200 millis").pipe(Schedule.union(Schedule.spaced("5 seconds")), Schedule.upTo(Duration.millis(forMs))),
      while: isTransport
    })
  )
