import type { Socket } from "@effect/platform"

export type Framing = "ndjson" | "message"

/** What the protocol needs of one accepted connection, whichever transport it came on. */
export interface Connection {
  /** Reading: frames arrive through `runRaw`, which ends when the connection closes. */
  readonly socket: Socket.Socket
  readonly transport: "tcp" | "websocket"
  readonly framing: Framing
  /** Headers of the WebSocket upgrade, added to every request of the connection. */
  readonly headers?: ReadonlyArray<[string, string]>
  /** Sends one frame now; the transport buffers what the client has not read yet. */
  readonly write: (text: string) => void
  /** Bytes written and not yet handed to the operating system (the client is behind by that much). */
  readonly queuedBytes: () => number
  /** Stops and restarts reading from the client (TCP/WebSocket backpressure). */
  readonly pause: () => void
  readonly resume: () => void
  /** Sends a last frame and closes; a client that does not read it is cut off after a short grace. */
  readonly close: (lastFrame: string, reason: string) => void
}
