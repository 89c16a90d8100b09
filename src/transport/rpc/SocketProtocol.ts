import { RpcServer } from "@effect/rpc"
import type { FromClientEncoded, FromServerEncoded, RequestEncoded } from "@effect/rpc/RpcMessage"
import { Context, Effect, Mailbox, Option, Scope } from "effect"
import { Presence } from "../../presence/Presence.js"
import { Metrics } from "../metrics/Metrics.js"
import type { Connection } from "./Connection.js"
import { makeConnectionLimits } from "./ConnectionLimits.js"
import { makeFrameReader } from "./FrameReader.js"
import { makeFrameWriter } from "./FrameWriter.js"

export type { Connection, Framing } from "./Connection.js"

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

/**
 * Waits for the event loop to poll for I/O once. A connection with requests waiting its turn starts
 * the next one only after that, so that a client with a deep pipeline cannot keep the hub busy
 * without other connections' frames being read.
 */
const yieldToIo = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

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
 * what one connection can hold: requests open at once (more get an error reply each;
 * ConnectionLimits), reply bytes waiting for the client to read (beyond that it stops starting the
 * connection's requests and reading its frames, and closes a connection that does not drain;
 * FrameWriter, FrameReader), and the time to a first authenticated request. It counts connections
 * and RPC outcomes for `/metrics`.
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

    /**
     * Serves one connection for as long as it is open, in the caller's scope. It runs with an empty
     * context (it takes what it needs when the protocol is built): the RPC server merges the
     * context of the fiber that hands it a request into that request's context, and every
     * `provideService` below copies that context, so an open request (a subscription held for
     * hours) would otherwise carry copies of the whole hub's context.
     */
    const onSocket = (conn: Connection) =>
      Effect.flatMap(Effect.scope, (scope) => Effect.mapInputContext(serve(conn, scope), (_: Context.Context<never>) => Context.empty()))

    const serve = (conn: Connection, scope: Scope.Scope) =>
      Effect.gen(function* () {
        const id = nextConnectionId++
        const { transport } = conn
        const limits = makeConnectionLimits(options, metrics)
        let authenticated = false
        /** Closes a connection with no authenticated request in time (a timer, not a fiber held per connection). */
        let authTimer: ReturnType<typeof setTimeout> | undefined
        const authenticate = () => {
          authenticated = true
          if (authTimer !== undefined) clearTimeout(authTimer)
          authTimer = undefined
        }

        // == output: every frame waits while the client is more than the limit behind
        const writer = yield* makeFrameWriter(conn, options, scope)

        const send = (msg: FromServerEncoded): Effect.Effect<void> =>
          Effect.zipRight(
            writer.awaitRoom,
            Effect.suspend(() => {
              if (msg._tag === "Chunk") {
                authenticate()
              } else if (msg._tag === "Exit") {
                const outcome = failureTag(msg.exit)
                if (outcome !== undefined && outcome !== "Unauthorized") authenticate()
                limits.exited(msg.requestId, msg.exit)
              }
              if (!writer.isClosed()) writer.writeFrame(msg)
              return msg._tag === "Exit" && limits.hasQueued()
                ? Effect.asVoid(Effect.forkIn(Effect.zipRight(yieldToIo, startQueued), scope))
                : Effect.void
            })
          )

        /** Hands a request to the server; one it refuses outright (e.g. after the client's `Eof`) gets no Exit. */
        const start = (request: RequestEncoded): Effect.Effect<void> =>
          Effect.onError(writeRequest(id, request), () => Effect.sync(() => limits.refused(request.id)))
        const startQueued: Effect.Effect<void> = Effect.suspend(() => {
          if (writer.isClosed()) return Effect.void
          const next = limits.nextQueued()
          return next === undefined ? Effect.void : Effect.zipRight(start(next), startQueued)
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
            writer.markClosed()
            if (authTimer !== undefined) clearTimeout(authTimer)
            clientIds.delete(id)
            clients.delete(id)
            metrics.add("kiris_open_connections", { transport }, -1)
            limits.release()
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
              const taken = limits.openTag(request.id)
              if (taken !== undefined) {
                return yield* reject(
                  "duplicate_id",
                  `duplicate request id: ${request.id} is still in use by an open ${taken} request on this connection; the new request was dropped`
                )
              }
              if (limits.inFlightFull()) {
                metrics.inc("kiris_rpc_frame_errors_total", { transport, reason: "in_flight" })
                return yield* send({
                  _tag: "Exit",
                  requestId: request.id,
                  exit: {
                    _tag: "Failure",
                    cause: { _tag: "Die", defect: `too many requests in flight on this connection (limit ${options.maxInFlight})` }
                  }
                })
              }
              // no new work while the client is not reading the replies it already has
              yield* writer.awaitRoom
              if (writer.isClosed()) return
              limits.opened(request.id, tag, kind)
            }
            ;(request as { headers: ReadonlyArray<[string, string]> }).headers = [
              ...(conn.headers ?? []),
              ...(Array.isArray(request.headers) ? request.headers : [])
            ]
            if (kind === "unary" && !limits.runOrQueue(request)) return
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
            const waiting = limits.startWaiting(message.requestId)
            if (waiting !== undefined) return Effect.zipRight(start(waiting), writeRequest(id, message))
          }
          return writeRequest(id, message)
        }

        const onData = yield* makeFrameReader(
          conn,
          options.maxFrameBytes,
          {
            onText: handleFrame,
            onTooLarge: (size) => reject("oversized", `frame too large: ${size} bytes exceeds the limit of ${options.maxFrameBytes} bytes`)
          },
          scope
        )

        if (options.authTimeoutMs > 0 && !authenticated) {
          authTimer = setTimeout(() => {
            authTimer = undefined
            if (!authenticated)
              Effect.runSync(writer.shut(`connection closed: no authenticated request within ${options.authTimeoutMs / 1000} s of connecting`))
          }, options.authTimeoutMs).unref()
        }

        // until the connection ends (or the server shuts down, which interrupts this)
        yield* Effect.async<void>((resume) => {
          let ended = false
          let stop: (() => void) | undefined = undefined
          stop = conn.listen(onData, () => {
            if (ended) return
            ended = true
            stop?.()
            resume(Effect.void)
          })
          if (ended) stop()
          return Effect.sync(() => stop?.())
        }).pipe(Effect.interruptible)
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
