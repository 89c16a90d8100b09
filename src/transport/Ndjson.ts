import { Stream } from "effect"

/**
 * NDJSON line framing, shared by every newline-delimited transport (the RPC socket and the Kirosu
 * port): a byte stream is split on `\n` into UTF-8 lines, and a line longer than the limit is never
 * held in memory whole: it is dropped and reported once, with its size, when its newline arrives.
 */

export type Frame = { readonly _tag: "Line"; readonly text: string } | { readonly _tag: "Oversize"; readonly bytes: number }

export interface LineSplitter {
  /** The complete lines in what arrived so far (a line may span chunks, even inside a character). */
  readonly push: (chunk: Uint8Array) => Array<Frame>
  /** The last line, when the input ended without a newline. */
  readonly end: () => Array<Frame>
}

/** Splits a byte stream on `\n`; lines longer than `maxBytes` become `Oversize`. */
export const makeLineSplitter = (maxBytes: number): LineSplitter => {
  let pending: Array<Buffer> = []
  let pendingBytes = 0
  let discarded = 0
  const decoder = new TextDecoder()

  const finish = (last: Buffer): Frame => {
    if (discarded > 0) {
      const bytes = discarded + last.length
      discarded = 0
      return { _tag: "Oversize", bytes }
    }
    const whole = pending.length === 0 ? last : Buffer.concat([...pending, last])
    pending = []
    pendingBytes = 0
    return whole.length > maxBytes ? { _tag: "Oversize", bytes: whole.length } : { _tag: "Line", text: decoder.decode(whole) }
  }

  const keep = (rest: Buffer) => {
    if (rest.length === 0) return
    if (discarded > 0) {
      discarded += rest.length
    } else if (pendingBytes + rest.length > maxBytes) {
      discarded = pendingBytes + rest.length
      pending = []
      pendingBytes = 0
    } else {
      // a copy, so that a short tail does not keep a large chunk alive
      pending.push(Buffer.from(rest))
      pendingBytes += rest.length
    }
  }

  const push = (chunk: Uint8Array): Array<Frame> => {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    const frames: Array<Frame> = []
    let start = 0
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      frames.push(finish(buf.subarray(start, nl)))
      start = nl + 1
    }
    keep(buf.subarray(start))
    return frames
  }

  const end = (): Array<Frame> => (pendingBytes > 0 || discarded > 0 ? [finish(Buffer.alloc(0))] : [])

  return { push, end }
}

/** The frames of a byte stream, the last line included when it has no newline. */
export const splitLines =
  (maxBytes: number) =>
  <E, R>(bytes: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Frame, E, R> =>
    Stream.suspend(() => {
      const splitter = makeLineSplitter(maxBytes)
      return Stream.concat(
        Stream.mapConcat(bytes, splitter.push),
        Stream.suspend(() => Stream.fromIterable(splitter.end()))
      )
    })
