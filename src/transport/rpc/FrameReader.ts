import { Effect, Queue, type Scope } from "effect"
import { makeLineSplitter } from "../Ndjson.js"
import type { Connection } from "./Connection.js"

type Frame = { readonly _tag: "text"; readonly text: string } | { readonly _tag: "tooLarge"; readonly size: number }

export interface FrameHandlers {
  /** One frame of text, within the size limit. */
  readonly onText: (text: string) => Effect.Effect<void>
  /** A frame over the size limit, skipped (`size` counts what was seen of it). */
  readonly onTooLarge: (size: number) => Effect.Effect<void>
}

/**
 * The input side of one connection: splits what arrives into frames (NDJSON lines, or one frame per
 * WebSocket message), skipping any longer than `maxFrameBytes`, and hands them to `handlers` one at
 * a time, in order, on one fiber in `scope`. While too much text waits to be handled, reading from
 * the client pauses. Returns what the transport calls with each piece of data.
 */
export const makeFrameReader = (
  conn: Pick<Connection, "framing" | "pause" | "resume">,
  maxFrameBytes: number,
  handlers: FrameHandlers,
  scope: Scope.Scope
) =>
  Effect.gen(function* () {
    const { framing } = conn
    /** Incoming text a connection may have waiting to be handled before reading from it pauses. */
    const maxInboxChars = Math.max(maxFrameBytes, 1024 * 1024)
    const inbox = yield* Queue.unbounded<Frame>()
    let inboxChars = 0
    let paused = false
    const enqueue = (frame: Frame, chars: number) => {
      inboxChars += chars
      Queue.unsafeOffer(inbox, frame)
      if (!paused && inboxChars > maxInboxChars) {
        paused = true
        conn.pause()
      }
    }
    yield* Queue.take(inbox).pipe(
      Effect.flatMap((frame) => {
        if (frame._tag === "tooLarge") return handlers.onTooLarge(frame.size)
        inboxChars -= frame.text.length
        if (paused && inboxChars < maxInboxChars / 2) {
          paused = false
          conn.resume()
        }
        return handlers.onText(frame.text)
      }),
      // a frame the server refuses by interrupting (e.g. a request after the client's `Eof`) must not stop the loop
      Effect.catchAllCause(() => Effect.void),
      Effect.forever,
      Effect.forkIn(scope)
    )

    const decoder = new TextDecoder()
    const lines = makeLineSplitter(maxFrameBytes)
    const onData = (data: string | Uint8Array): void => {
      if (framing === "message") {
        const chunk = typeof data === "string" ? data : decoder.decode(data)
        const size = Buffer.byteLength(chunk)
        return size > maxFrameBytes ? enqueue({ _tag: "tooLarge", size }, 0) : enqueue({ _tag: "text", text: chunk }, chunk.length)
      }
      for (const frame of lines.push(typeof data === "string" ? Buffer.from(data) : data)) {
        if (frame._tag === "Oversize") enqueue({ _tag: "tooLarge", size: frame.bytes }, 0)
        else enqueue({ _tag: "text", text: frame.text }, frame.text.length)
      }
    }
    return onData
  })
