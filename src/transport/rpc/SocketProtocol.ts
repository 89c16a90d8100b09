import type { Socket } from "@effect/platform"
import { RpcServer } from "@effect/rpc"
import type { FromClientEncoded, FromServerEncoded, RequestEncoded } from "@effect/rpc/RpcMessage"
import { Effect, Mailbox, Option, Scope } from "effect"
import { Metrics } from "../metrics/Metrics.js"

export type Framing = "ndjson" | "message"

/** Request ids are strings of decimal digits (the server turns them into bigints; anything else would throw). */
const isRequestId = (u: unknown): u is string => typeof u === "string" && /^\d{1,20}$/.test(u)
const invalidId = (u: unknown) => `invalid request id: ${JSON.stringify(u) ?? String(u)} (ids are strings of decimal digits)`
const isHeaderPairs = (u: unknown): boolean =>
  Array.isArray(u) && u.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === "string" && typeof h[1] === "string")

/**
 * The RPC server protocol for both of our socket transports (TCP NDJSON and WebSocket JSON
 * messages). It differs from @effect/rpc's built-in socket protocol in what it does with bad
 * input: an oversized frame or a line that is not JSON gets an error message (a `Defect` frame
 * naming the problem) and is skipped, and the connection's other requests carry on. It also counts
 * connections and RPC outcomes for `/metrics`.
 */
export const makeSocketProtocol = (options: { readonly maxFrameBytes: number; readonly isStream: (tag: string) => boolean }) =>
  Effect.gen(function* () {
    const metrics = yield* Metrics
    const disconnects = yield* Mailbox.make<number>()
    const clients = new Map<number, { readonly write: (msg: FromServerEncoded) => Effect.Effect<void>; readonly tags: Map<string, string> }>()
    const clientIds = new Set<number>()
    let nextId = 0
    let writeRequest!: (clientId: number, message: FromClientEncoded) => Effect.Effect<void>

    const onSocket = (socket: Socket.Socket, transport: string, framing: Framing, headers?: ReadonlyArray<[string, string]>) =>
      Effect.gen(function* () {
        const scope = yield* Effect.scope
        const id = nextId++
        const writeRaw = yield* socket.writer
        const tags = new Map<string, string>()
        /** Unary requests awaiting their Exit (streams are open-ended, so shutdown does not wait for them). */
        const unary = new Set<string>()
        const encode = (msg: unknown) => (framing === "ndjson" ? JSON.stringify(msg) + "\n" : JSON.stringify(msg))
        const write = (msg: FromServerEncoded) => {
          if (msg._tag === "Exit") {
            const tag = tags.get(msg.requestId)
            if (unary.delete(msg.requestId)) metrics.add("kiris_rpc_in_flight", {}, -1)
            if (tag !== undefined) {
              tags.delete(msg.requestId)
              const exit = msg.exit as { _tag: string; cause?: { _tag?: string } }
              const outcome = exit._tag === "Success" ? "success" : exit.cause?._tag === "Fail" ? "failure" : exit.cause?._tag === "Die" ? "defect" : "interrupted"
              metrics.inc("kiris_rpc_calls_total", { tag, outcome })
            }
          }
          return Effect.orDie(writeRaw(encode(msg)))
        }
        const reject = (reason: string, detail: string) => {
          metrics.inc("kiris_rpc_frame_errors_total", { transport, reason })
          return Effect.orDie(writeRaw(encode({ _tag: "Defect", defect: detail })))
        }

        clientIds.add(id)
        clients.set(id, { write, tags })
        metrics.inc("kiris_connections_total", { transport })
        metrics.add("kiris_open_connections", { transport }, 1)
        yield* Scope.addFinalizer(
          scope,
          Effect.suspend(() => {
            clientIds.delete(id)
            clients.delete(id)
            metrics.add("kiris_open_connections", { transport }, -1)
            metrics.add("kiris_rpc_in_flight", {}, -unary.size)
            unary.clear()
            return disconnects.offer(id)
          })
        )

        const handleFrame = (text: string): Effect.Effect<void> => {
          if (text.trim() === "") return Effect.void
          let message: FromClientEncoded
          try {
            message = JSON.parse(text)
          } catch (e) {
            return reject("malformed", `malformed frame: ${(e as Error).message}`)
          }
          if (typeof message !== "object" || message === null || typeof (message as { _tag?: unknown })._tag !== "string") {
            return reject("malformed", "malformed frame: expected a JSON object with a string _tag")
          }
          if (message._tag === "Request") {
            const request = message as RequestEncoded & { headers?: ReadonlyArray<[string, string]> }
            if (!isRequestId(request.id)) return reject("malformed", invalidId(request.id))
            if (request.headers !== undefined && !isHeaderPairs(request.headers)) {
              return reject("malformed", "malformed frame: headers must be a list of [name, value] string pairs")
            }
            ;(request as { headers: ReadonlyArray<[string, string]> }).headers = [...(headers ?? []), ...(Array.isArray(request.headers) ? request.headers : [])]
            tags.set(request.id, String(request.tag))
            if (!options.isStream(String(request.tag)) && !unary.has(request.id)) {
              unary.add(request.id)
              metrics.add("kiris_rpc_in_flight", {}, 1)
            }
          } else if ((message._tag === "Ack" || message._tag === "Interrupt") && !isRequestId(message.requestId)) {
            return reject("malformed", invalidId(message.requestId))
          }
          return writeRequest(id, message)
        }

        const decoder = new TextDecoder()
        let buffer = ""
        let discarding = 0
        const tooLarge = (size: number) =>
          reject("oversized", `frame too large: ${size} bytes exceeds the limit of ${options.maxFrameBytes} bytes`)

        const onData = (data: string | Uint8Array): Effect.Effect<void> => {
          const chunk = typeof data === "string" ? data : decoder.decode(data, { stream: framing === "ndjson" })
          if (framing === "message") {
            return Buffer.byteLength(chunk) > options.maxFrameBytes ? tooLarge(Buffer.byteLength(chunk)) : handleFrame(chunk)
          }
          const effects: Array<Effect.Effect<void>> = []
          let start = 0
          let text = buffer + chunk
          buffer = ""
          for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
            const line = text.slice(start, nl)
            start = nl + 1
            if (discarding > 0) {
              effects.push(tooLarge(discarding + line.length))
              discarding = 0
            } else if (line.length > options.maxFrameBytes) {
              effects.push(tooLarge(line.length))
            } else {
              effects.push(handleFrame(line))
            }
          }
          text = text.slice(start)
          if (discarding > 0) discarding += text.length
          else if (text.length > options.maxFrameBytes) discarding = text.length
          else buffer = text
          return Effect.forEach(effects, (e) => e, { discard: true })
        }

        yield* socket.runRaw(onData).pipe(
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
          return client ? client.write(response) : Effect.void
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
