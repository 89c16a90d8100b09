import type { Socket } from "@effect/platform"
import { RpcServer } from "@effect/rpc"
import type { FromClientEncoded, FromServerEncoded, RequestEncoded } from "@effect/rpc/RpcMessage"
import { Effect, Mailbox, Option, Queue, Scope } from "effect"
import { Presence } from "../../presence/Presence.js"
import { Metrics } from "../metrics/Metrics.js"

export type Framing = "ndjson" | "message"

/**
 * Connection ids (the RPC `clientId`) are unique across both transports of the process, so a
 * service can bind state (a worker's leases) to one connection whichever transport it came on.
 */
let nextConnectionId = 0

/**
 * Request ids are strings of decimal digits in canonical form: the server turns them into bigints
 * (anything else would throw), so "01" and "1" would otherwise name the same request.
 */
const isRequestId = (u: unknown): u is string => typeof u === "string" && /^(0|[1-9]\d{0,19})$/.test(u)
const invalidId = (u: unknown) => `invalid request id: ${(JSON.stringify(u) ?? String(u)).slice(0, 100)} (ids are strings of decimal digits)`
const isHeaderPairs = (u: unknown): boolean =>
  Array.isArray(u) && u.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === "string" && typeof h[1] === "string")

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

export interface ProtocolOptions {
  readonly maxFrameBytes: number
  readonly maxInFlight: number
  /** Unary requests of one connection handed to the server at once; later ones wait in order. */
  readonly maxRunning: number
  readonly maxQueuedOutputBytes: number
  readonly outputStallMs: number
  readonly authTimeoutMs: number
  /**
   * What a tag names: a streaming RPC, a unary one, or a unary one that may wait long on other
   * events (not held to `maxRunning`); undefined: no such RPC.
   */
  readonly kindOf: (tag: string) => "stream" | "unary" | "waits" | undefined
}

type Frame = { readonly _tag: "text"; readonly text: string } | { readonly _tag: "tooLarge"; readonly size: number }

/**
 * Waits for the event loop to poll for I/O once. A connection with requests waiting its turn starts
 * the next one only after that, so that a client with a deep pipeline cannot keep the hub busy
 * without other connections' frames being read.
 */
const yieldToIo = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/** Frames at least this long are written without joining the newline on (see `writeFrame`). */
const LARGE_FRAME_CHARS = 64 * 1024

const failureTag = (exit: unknown): string | undefined => {
  const e = exit as { _tag?: string; cause?: { _tag?: string; error?: { _tag?: unknown } } }
  if (e._tag === "Success") return "Success"
  if (e.cause?._tag === "Fail") return typeof e.cause.error?._tag === "string" ? e.cause.error._tag : "Fail"
  return undefined
}

/**
 * The RPC server protocol for both of our socket transports (TCP NDJSON and WebSocket JSON
 * messages). It differs from @effect/rpc's built-in socket protocol in what it does with bad
 * input: an oversized frame or a line that is not JSON gets an error message (a `Defect` frame
 * naming the problem) and is skipped, and the connection's other requests carry on. It also bounds
 * what one connection can hold: requests open at once (more get an error reply each), reply bytes
 * waiting for the client to read (beyond that it stops starting the connection's requests and
 * reading its frames, and closes a connection that does not drain), and the time to a first
 * authenticated request. It counts connections and RPC outcomes for `/metrics`.
 */
export const makeSocketProtocol = (options: ProtocolOptions) =>
  Effect.gen(function* () {
    const metrics = yield* Metrics
    // a closed connection leaves every project it was present in at once (not only after the timeout)
    const presence = yield* Effect.serviceOption(Presence)
    const disconnects = yield* Mailbox.make<number>()
    const clients = new Map<number, { readonly send: (msg: FromServerEncoded) => Effect.Effect<void> }>()
    const clientIds = new Set<number>()
    let writeRequest!: (clientId: number, message: FromClientEncoded) => Effect.Effect<void>
    /** Incoming text a connection may have waiting to be handled before reading from it pauses. */
    const maxInboxChars = Math.max(options.maxFrameBytes, 1024 * 1024)

    const onSocket = (conn: Connection) =>
      Effect.gen(function* () {
        const scope = yield* Effect.scope
        const id = nextConnectionId++
        const { transport, framing } = conn
        /** Requests awaiting their Exit, by id, with their tag. */
        const open = new Map<string, string>()
        /** Unary requests awaiting their Exit (streams are open-ended, so shutdown does not wait for them). */
        const unary = new Set<string>()
        /** Unary requests the server is running, held to `maxRunning`; `queued` wait their turn, in order. */
        const running = new Set<string>()
        const queued: Array<RequestEncoded> = []
        let authenticated = false
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

        const shut = (reason: string) =>
          Effect.sync(() => {
            if (closed) return
            closed = true
            room.unsafeOpen()
            conn.close(encode({ _tag: "Defect", defect: reason }), reason)
          })

        // == output: every frame waits while the client is more than the limit behind
        const room = yield* Effect.makeLatch(true)
        let watching = false
        const congested = () => conn.queuedBytes() > options.maxQueuedOutputBytes
        /** Polls the transport's buffer until it drains below the limit; no progress for too long closes the connection. */
        const watch = Effect.gen(function* () {
          let last = conn.queuedBytes()
          let progressAt = Date.now()
          while (!closed && congested()) {
            yield* Effect.sleep("5 millis")
            const now = conn.queuedBytes()
            if (now < last) progressAt = Date.now()
            last = now
            if (Date.now() - progressAt > options.outputStallMs) {
              return yield* shut(
                `connection closed: the client did not read its replies (${now} bytes queued, limit ${options.maxQueuedOutputBytes}) for ${options.outputStallMs} ms`
              )
            }
          }
          watching = false
          yield* room.open
        })
        const awaitRoom: Effect.Effect<void> = Effect.suspend(() => {
          if (closed || !congested()) return Effect.void
          room.unsafeClose()
          const start = watching ? Effect.void : Effect.asVoid(Effect.forkIn(Effect.interruptible(watch), scope))
          watching = true
          return start.pipe(Effect.zipRight(room.await), Effect.zipRight(awaitRoom))
        })

        const account = (msg: FromServerEncoded) => {
          if (msg._tag === "Chunk") {
            authenticated = true
          } else if (msg._tag === "Exit") {
            const outcome = failureTag(msg.exit)
            if (outcome !== undefined && outcome !== "Unauthorized") authenticated = true
            if (unary.delete(msg.requestId)) metrics.add("kiris_rpc_in_flight", {}, -1)
            running.delete(msg.requestId)
            const tag = open.get(msg.requestId)
            if (tag !== undefined) {
              open.delete(msg.requestId)
              const exit = msg.exit as { _tag: string; cause?: { _tag?: string } }
              const result = exit._tag === "Success" ? "success" : exit.cause?._tag === "Fail" ? "failure" : exit.cause?._tag === "Die" ? "defect" : "interrupted"
              metrics.inc("kiris_rpc_calls_total", { tag, outcome: result })
            }
          }
        }
        const send = (msg: FromServerEncoded): Effect.Effect<void> =>
          Effect.zipRight(
            awaitRoom,
            Effect.suspend(() => {
              account(msg)
              if (!closed) writeFrame(msg)
              return msg._tag === "Exit" && queued.length > 0 ? Effect.asVoid(Effect.forkIn(Effect.zipRight(yieldToIo, startQueued), scope)) : Effect.void
            })
          )

        /** Hands a request to the server; one it refuses outright (e.g. after the client's `Eof`) gets no Exit. */
        const start = (request: RequestEncoded): Effect.Effect<void> =>
          Effect.onError(writeRequest(id, request), () =>
            Effect.sync(() => {
              open.delete(request.id)
              running.delete(request.id)
              if (unary.delete(request.id)) metrics.add("kiris_rpc_in_flight", {}, -1)
            })
          )
        const startQueued: Effect.Effect<void> = Effect.suspend(() => {
          if (closed || queued.length === 0 || running.size >= options.maxRunning) return Effect.void
          const next = queued.shift()!
          running.add(next.id)
          return Effect.zipRight(start(next), startQueued)
        })
        const reject = (reason: string, detail: string) => {
          metrics.inc("kiris_rpc_frame_errors_total", { transport, reason })
          return send({ _tag: "Defect", defect: detail })
        }

        clientIds.add(id)
        clients.set(id, { send })
        metrics.inc("kiris_connections_total", { transport })
        metrics.add("kiris_open_connections", { transport }, 1)
        yield* Scope.addFinalizer(
          scope,
          Effect.suspend(() => {
            closed = true
            room.unsafeOpen()
            clientIds.delete(id)
            clients.delete(id)
            metrics.add("kiris_open_connections", { transport }, -1)
            metrics.add("kiris_rpc_in_flight", {}, -unary.size)
            unary.clear()
            open.clear()
            running.clear()
            queued.length = 0
            return Option.isSome(presence) ? Effect.zipRight(presence.value.disconnected(id), disconnects.offer(id)) : disconnects.offer(id)
          })
        )

        // == input: frames are handled one at a time, in order, by one fiber
        const handleRequest = (request: RequestEncoded & { headers?: ReadonlyArray<[string, string]> }) =>
          Effect.gen(function* () {
            if (!isRequestId(request.id)) return yield* reject("malformed", invalidId(request.id))
            if (request.headers !== undefined && !isHeaderPairs(request.headers)) {
              return yield* reject("malformed", "malformed frame: headers must be a list of [name, value] string pairs")
            }
            const tag = String(request.tag)
            const kind = options.kindOf(tag)
            if (kind !== undefined) {
              const taken = open.get(request.id)
              if (taken !== undefined) {
                return yield* reject(
                  "duplicate_id",
                  `duplicate request id: ${request.id} is still in use by an open ${taken} request on this connection; the new request was dropped`
                )
              }
              if (open.size >= options.maxInFlight) {
                metrics.inc("kiris_rpc_frame_errors_total", { transport, reason: "in_flight" })
                return yield* send({
                  _tag: "Exit",
                  requestId: request.id,
                  exit: { _tag: "Failure", cause: { _tag: "Die", defect: `too many requests in flight on this connection (limit ${options.maxInFlight})` } }
                })
              }
              // no new work while the client is not reading the replies it already has
              yield* awaitRoom
              if (closed) return
              open.set(request.id, tag)
              if (kind !== "stream") {
                unary.add(request.id)
                metrics.add("kiris_rpc_in_flight", {}, 1)
              }
            }
            ;(request as { headers: ReadonlyArray<[string, string]> }).headers = [...(conn.headers ?? []), ...(Array.isArray(request.headers) ? request.headers : [])]
            if (kind === "unary") {
              if (running.size >= options.maxRunning) {
                queued.push(request)
                return
              }
              running.add(request.id)
            }
            return yield* start(request)
          })

        const handleFrame = (text: string): Effect.Effect<void> => {
          if (text.trim() === "") return Effect.void
          let message: FromClientEncoded
          try {
            message = JSON.parse(text)
          } catch (e) {
            return reject("malformed", `malformed frame: ${(e as Error).message.slice(0, 200)}`)
          }
          if (typeof message !== "object" || message === null || typeof (message as { _tag?: unknown })._tag !== "string") {
            return reject("malformed", "malformed frame: expected a JSON object with a string _tag")
          }
          if (message._tag === "Request") return handleRequest(message)
          if ((message._tag === "Ack" || message._tag === "Interrupt") && !isRequestId(message.requestId)) {
            return reject("malformed", invalidId(message.requestId))
          }
          if (message._tag === "Interrupt") {
            // a request still waiting its turn starts now, so that the server can interrupt it
            const i = queued.findIndex((r) => r.id === message.requestId)
            if (i >= 0) {
              const [waiting] = queued.splice(i, 1)
              running.add(waiting!.id)
              return Effect.zipRight(start(waiting!), writeRequest(id, message))
            }
          }
          return writeRequest(id, message)
        }

        const tooLarge = (size: number) =>
          reject("oversized", `frame too large: ${size} bytes exceeds the limit of ${options.maxFrameBytes} bytes`)

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
            if (frame._tag === "tooLarge") return tooLarge(frame.size)
            inboxChars -= frame.text.length
            if (paused && inboxChars < maxInboxChars / 2) {
              paused = false
              conn.resume()
            }
            return handleFrame(frame.text)
          }),
          // a frame the server refuses by interrupting (e.g. a request after the client's `Eof`) must not stop the loop
          Effect.catchAllCause(() => Effect.void),
          Effect.forever,
          Effect.forkIn(scope)
        )

        const decoder = new TextDecoder()
        let buffer = ""
        let discarding = 0
        const onData = (data: string | Uint8Array): void => {
          const chunk = typeof data === "string" ? data : decoder.decode(data, { stream: framing === "ndjson" })
          if (framing === "message") {
            const size = Buffer.byteLength(chunk)
            return size > options.maxFrameBytes ? enqueue({ _tag: "tooLarge", size }, 0) : enqueue({ _tag: "text", text: chunk }, chunk.length)
          }
          let start = 0
          let text = buffer + chunk
          buffer = ""
          for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
            const line = text.slice(start, nl)
            start = nl + 1
            if (discarding > 0) {
              enqueue({ _tag: "tooLarge", size: discarding + line.length }, 0)
              discarding = 0
            } else if (line.length > options.maxFrameBytes) {
              enqueue({ _tag: "tooLarge", size: line.length }, 0)
            } else {
              enqueue({ _tag: "text", text: line }, line.length)
            }
          }
          text = text.slice(start)
          if (discarding > 0) discarding += text.length
          else if (text.length > options.maxFrameBytes) discarding = text.length
          else buffer = text
        }

        if (options.authTimeoutMs > 0) {
          yield* Effect.sleep(options.authTimeoutMs).pipe(
            Effect.zipRight(
              Effect.suspend(() =>
                authenticated ? Effect.void : shut(`connection closed: no authenticated request within ${options.authTimeoutMs / 1000} s of connecting`)
              )
            ),
            Effect.forkIn(scope)
          )
        }

        yield* conn.socket.runRaw(onData).pipe(
          Effect.interruptible,
          Effect.catchIf((error) => error.reason === "Close", () => Effect.void),
          Effect.orDie,
          Effect.withUnhandledErrorLogLevel(Option.none())
        )
      })

    const protocol = yield* RpcServer.Protocol.make((writeRequest_) => {
      writeRequest = writeRequest_
      return Effect.succeed({
        disconnects,
        send: (clientId: number, response: FromServerEncoded) => {
          const client = clients.get(clientId)
          return client ? client.send(response) : Effect.void
        },
        end: () => Effect.void,
        clientIds: Effect.sync(() => clientIds as ReadonlySet<number>),
        initialMessage: Effect.succeedNone,
        supportsAck: true,
        supportsTransferables: false,
        supportsSpanPropagation: true
      })
    })

    return { protocol, onSocket } as const
  })
