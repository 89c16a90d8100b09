import { Clock, Effect, type Scope } from "effect"
import type { Connection } from "./Connection.js"

/** Frames at least this long are written without joining the newline on (see `writeFrame`). */
const LARGE_FRAME_CHARS = 64 * 1024

export interface OutputLimits {
  readonly maxQueuedOutputBytes: number
  readonly outputStallMs: number
}

/**
 * The output side of one connection: frames in its framing, and room for them. Every frame waits
 * (`awaitRoom`) while the client is more than `maxQueuedOutputBytes` behind; a client that reads
 * nothing of its backlog for `outputStallMs` is cut off. Watching for room runs in `scope`.
 */
export const makeFrameWriter = (conn: Pick<Connection, "framing" | "write" | "queuedBytes" | "close">, limits: OutputLimits, scope: Scope.Scope) =>
  Effect.gen(function* () {
    const { framing } = conn
    let closed = false
    const encode = (msg: unknown) => (framing === "ndjson" ? JSON.stringify(msg) + "\n" : JSON.stringify(msg))
    /**
     * A large NDJSON frame is written as its JSON and then its newline: joining them would copy
     * the whole reply once more, and large copies are garbage that V8 collects late.
     */
    const writeFrame = (msg: unknown) => {
      const json = JSON.stringify(msg)
      if (framing === "ndjson" && json.length > LARGE_FRAME_CHARS) {
        conn.write(json)
        conn.write("\n")
      } else conn.write(framing === "ndjson" ? json + "\n" : json)
    }

    const room = yield* Effect.makeLatch(true)

    /** Marks the connection closed: nothing more is written, and nothing waits for room. */
    const markClosed = () => {
      closed = true
      room.unsafeOpen()
    }

    /** Closes the connection (once) with a last `Defect` frame giving the reason. */
    const shut = (reason: string) =>
      Effect.sync(() => {
        if (closed) return
        markClosed()
        conn.close(encode({ _tag: "Defect", defect: reason }), reason)
      })

    let watching = false
    const congested = () => conn.queuedBytes() > limits.maxQueuedOutputBytes
    /** Polls the transport's buffer until it drains below the limit; no progress for too long closes the connection. */
    const watch = Effect.gen(function* () {
      let last = conn.queuedBytes()
      let progressAt = yield* Clock.currentTimeMillis
      while (!closed && congested()) {
        yield* Effect.sleep("5 millis")
        const now = conn.queuedBytes()
        const at = yield* Clock.currentTimeMillis
        if (now < last) progressAt = at
        last = now
        if (at - progressAt > limits.outputStallMs) {
          return yield* shut(
            `connection closed: the client did not read its replies (${now} bytes queued, limit ${limits.maxQueuedOutputBytes}) for ${limits.outputStallMs} ms`
          )
        }
      }
      watching = false
      yield* room.open
    })
    /** Waits while the client is too far behind (returns at once when the connection is closed). */
    const awaitRoom: Effect.Effect<void> = Effect.suspend(() => {
      if (closed || !congested()) return Effect.void
      room.unsafeClose()
      const start = watching ? Effect.void : Effect.asVoid(Effect.forkIn(Effect.interruptible(watch), scope))
      watching = true
      return start.pipe(Effect.zipRight(room.await), Effect.zipRight(awaitRoom))
    })

    return { writeFrame, awaitRoom, shut, markClosed, isClosed: () => closed } as const
  })

export type FrameWriter = Effect.Effect.Success<ReturnType<typeof makeFrameWriter>>
