import { Effect, Queue } from "effect"
import * as net from "node:net"
import { WebSocket } from "ws"

/**
 * A hand-written client of the hub's wire protocol, the way a program in another language would
 * speak it: one JSON object per line on TCP, one JSON object per message on WebSocket. It acks
 * every `Chunk` it receives (the server sends nothing more on a stream until the Ack arrives).
 */
export interface ServerMessage {
  readonly _tag: string
  readonly requestId?: string
  readonly [key: string]: unknown
}

export interface RawConnection {
  /** Sends one frame: an object is JSON-encoded, a string goes out as-is (a line on TCP, a message on WebSocket). */
  readonly send: (frame: object | string) => Effect.Effect<void>
  /** Waits for the first received message matching `match` that no earlier `next` took. */
  readonly next: (what: string, match: (m: ServerMessage) => boolean) => Effect.Effect<ServerMessage>
  /** Whether the server has closed the connection. */
  readonly closed: () => boolean
}

export interface RawOptions {
  /** Ack every `Chunk` as it arrives (the default); without, the test sends its own Acks. */
  readonly ack?: boolean
}

export const request = (id: string, tag: string, payload: unknown, token: string) => ({
  _tag: "Request",
  id,
  tag,
  payload,
  headers: [["authorization", `Bearer ${token}`]]
})

const makeConnection = (transmit: (text: string) => void, isClosed: () => boolean, options: RawOptions = {}) =>
  Effect.gen(function* () {
    const incoming = yield* Queue.unbounded<ServerMessage>()
    const pending: Array<ServerMessage> = []
    const receive = (text: string) => {
      let message: ServerMessage
      try {
        message = JSON.parse(text) as ServerMessage
      } catch {
        message = { _tag: "Unparsable", text }
      }
      if (message._tag === "Chunk" && options.ack !== false) transmit(JSON.stringify({ _tag: "Ack", requestId: message.requestId }))
      Queue.unsafeOffer(incoming, message)
    }
    const connection: RawConnection = {
      send: (frame) => Effect.sync(() => transmit(typeof frame === "string" ? frame : JSON.stringify(frame))),
      next: (what, match) =>
        Effect.gen(function* () {
          for (;;) {
            const i = pending.findIndex(match)
            if (i >= 0) return pending.splice(i, 1)[0]!
            pending.push(yield* Queue.take(incoming))
          }
        }).pipe(
          Effect.timeoutFail({
            duration: "10 seconds",
            onTimeout: () => new Error(`timed out waiting for ${what}; unclaimed messages: ${JSON.stringify(pending).slice(0, 2000)}`)
          }),
          Effect.orDie
        ),
      closed: isClosed
    }
    return { connection, receive }
  })

/** A raw NDJSON connection to the hub's TCP port, closed with the caller's scope. */
export const rawTcp = (port: number, options: RawOptions = {}) =>
  Effect.gen(function* () {
    const socket = yield* Effect.acquireRelease(
      Effect.async<net.Socket, Error>((resume) => {
        const s = net.connect({ host: "127.0.0.1", port })
        s.once("connect", () => resume(Effect.succeed(s)))
        s.once("error", (e) => resume(Effect.fail(e)))
      }),
      (s) => Effect.sync(() => s.destroy())
    ).pipe(Effect.orDie)
    let closed = false
    const { connection, receive } = yield* makeConnection(
      (text) => socket.write(text + "\n"),
      () => closed,
      options
    )
    let buffer = ""
    socket.setEncoding("utf8")
    socket.on("data", (data: string) => {
      buffer += data
      for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        if (line.trim() !== "") receive(line)
      }
    })
    socket.on("close", () => (closed = true))
    return connection
  })

/** A raw WebSocket connection to the hub's `/rpc`, closed with the caller's scope. */
export const rawWebSocket = (url: string, options: RawOptions = {}) =>
  Effect.gen(function* () {
    const ws = yield* Effect.acquireRelease(
      Effect.async<WebSocket, Error>((resume) => {
        const s = new WebSocket(url)
        s.once("open", () => resume(Effect.succeed(s)))
        s.once("error", (e) => resume(Effect.fail(e)))
      }),
      (s) => Effect.sync(() => s.close())
    ).pipe(Effect.orDie)
    let closed = false
    const { connection, receive } = yield* makeConnection(
      (text) => ws.send(text),
      () => closed,
      options
    )
    ws.on("message", (data) => receive(data.toString()))
    ws.on("close", () => (closed = true))
    return connection
  })
