export type Framing = "ndjson" | "message"

/** What the protocol needs of one accepted connection, whichever transport it came on. */
export interface Connection {
  /**
   * Reading: hands what the client sends to `onData` (a string per WebSocket text message, bytes
   * otherwise) and calls `onEnd` once the connection has ended, closed by either side or failed
   * (at once if it already has). Returns what stops both. Plain listeners on the Node socket:
   * an idle connection holds no fiber for its reading.
   */
  readonly listen: (onData: (data: string | Uint8Array) => void, onEnd: () => void) => () => void
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
