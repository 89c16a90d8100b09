import { Socket, SocketServer } from "@effect/platform"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import * as NodeStream from "@effect/platform-node/NodeStream"
import { Cause, Console, Context, Deferred, Effect, Layer, Option, Redacted, Stream } from "effect"
import * as crypto from "node:crypto"
import type * as net from "node:net"
import { ServerConfig } from "../../config/ServerConfig.js"
import { Metrics } from "../metrics/Metrics.js"
import { type Frame, splitLines } from "../Ndjson.js"
import { KirosuAdapter } from "./KirosuAdapter.js"
import { encodeReply, parseLine } from "./KirosuProtocol.js"

/**
 * The Kirosu-compatible TCP listener (`kiris serve --kirosu-port`): newline-delimited JSON, one
 * long-lived connection per client, requests answered strictly in order with exactly one line each.
 * It owns sockets, framing, the shared-key check and `shutdown`; KirosuAdapter runs the methods.
 * Without a key the port is open to any process that reaches it: it then binds to loopback only and
 * the adapter refuses `python` tasks, which `--trust-shell` workers would run as code.
 *
 * Each connection is read as a Stream (pulled one chunk at a time, so a client that sends faster
 * than the hub answers is held back by TCP) and framed by transport/Ndjson.ts like the RPC socket.
 * Replies go straight to the connection's net.Socket: a client may half-close after its last
 * request and still read every reply, which the platform Socket's writer does not allow.
 */
export interface KirosuServerShape {
  /** Where the listener is bound; none when no Kirosu port is configured. */
  readonly address: Option.Option<SocketServer.TcpAddress>
  /** Completes once a client sent `shutdown` to a hub started with `kirosuAllowShutdown`. */
  readonly stopRequested: Effect.Effect<void>
}

/** After `shutdown`, how long the hub waits for the client to close before dropping the socket. */
const lingerMs = 5_000

const digest = (s: string) => crypto.createHash("sha256").update(s).digest()

/** Whether `host` names only this machine (`localhost`, `127.x.x.x`, `::1`). */
export const isLoopbackHost = (host: string): boolean => {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1")
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || /^::ffff:127(\.\d{1,3}){3}$/.test(h)
}

/**
 * Where the listener binds. Without a key anyone who reaches the port may call it, so it stays on
 * loopback whatever the hub's `host` is; with a key it follows `host`.
 */
export const kirosuBindHost = (host: string, hasKey: boolean): string => (hasKey || isLoopbackHost(host) ? host : "127.0.0.1")

/** Printed once at start by a hub whose Kirosu port has no key. */
export const noKeyWarning =
  "kiris warning: the Kirosu port has no key: it listens on loopback only, any local process can enqueue chat tasks, python tasks are refused (set --kirosu-key or KIRO_SWARM_KEY)"

/** What one answered frame asks of the connection: a line to write, and whether to close after it. */
type Reply = Option.Option<{ readonly line: string; readonly close: boolean }>

const make = Effect.gen(function* () {
  const config = yield* ServerConfig
  const adapter = yield* KirosuAdapter
  const metrics = yield* Metrics
  const stop = yield* Deferred.make<void>()
  const keyDigest = Option.map(config.kirosuKey, (k) => digest(Redacted.value(k)))
  const authorized = (params: Readonly<Record<string, unknown>>) =>
    Option.match(keyDigest, {
      onNone: () => true,
      onSome: (expected) => typeof params.auth_token === "string" && crypto.timingSafeEqual(digest(params.auth_token), expected)
    })

  const answer = (text: string): Effect.Effect<Reply> => {
    const parsed = parseLine(text)
    if (parsed._tag === "Blank") return Effect.succeedNone
    if (parsed._tag === "Invalid") {
      metrics.inc("kiris_rpc_frame_errors_total", { transport: "kirosu", reason: "malformed" })
      return Effect.succeedSome({ line: encodeReply(parsed.id, { error: parsed.message }), close: false })
    }
    const { id, method, params } = parsed.request
    const tag = `kirosu.${adapter.methods.includes(method) || method === "shutdown" ? method : "unknown"}`
    const reply = (outcome: { readonly result: object } | { readonly error: string }, close = false) => {
      metrics.inc("kiris_rpc_calls_total", { tag, outcome: "result" in outcome ? "success" : "failure" })
      return Option.some({ line: encodeReply(id, outcome), close })
    }
    if (!authorized(params)) return Effect.succeed(reply({ error: "Invalid KIRO_SWARM_KEY" }))
    if (method === "shutdown") return Effect.succeed(reply({ result: { ok: true } }, true))
    return adapter.call(method, params).pipe(
      Effect.map((result) => reply({ result })),
      Effect.catchTag("KirosuError", (e) => Effect.succeed(reply({ error: e.message }))),
      Effect.catchAllCause((cause) =>
        Effect.logError("kirosu request failed", cause).pipe(Effect.as(reply({ error: `Internal error: ${Cause.pretty(cause).split("\n")[0]}` })))
      )
    )
  }

  const answerFrame = (frame: Frame): Effect.Effect<Reply> => {
    if (frame._tag === "Line") return answer(frame.text)
    metrics.inc("kiris_rpc_frame_errors_total", { transport: "kirosu", reason: "oversized" })
    return Effect.succeedSome({
      line: encodeReply(null, { error: `Line too long: ${frame.bytes} bytes exceeds the limit of ${config.maxFrameBytes} bytes` }),
      close: false
    })
  }

  const serveConnection = (conn: net.Socket) =>
    Effect.gen(function* () {
      conn.setNoDelay(true)
      metrics.inc("kiris_connections_total", { transport: "kirosu" })
      metrics.add("kiris_open_connections", { transport: "kirosu" }, 1)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          metrics.add("kiris_open_connections", { transport: "kirosu" }, -1)
          conn.destroy()
        })
      )

      /** Resolves on the first of `events` (or at once when the socket is already gone). */
      const once = (events: ReadonlyArray<string>, start: () => void = () => {}) =>
        Effect.async<void>((resume) => {
          if (conn.destroyed) return resume(Effect.void)
          const done = () => resume(Effect.void)
          for (const e of events) conn.once(e, done)
          start()
          return Effect.sync(() => {
            for (const e of events) conn.off(e, done)
          })
        })
      const write = (line: string) => (conn.destroyed || conn.write(line) ? Effect.void : once(["drain", "close"]))
      /** Ends our side once everything written is flushed. */
      const endWrites = Effect.suspend(() => (conn.writableEnded ? Effect.void : once(["finish", "close"], () => conn.end())))
      /** Lets the client read everything and close first; then the finalizer drops the socket. */
      const linger = once(["close"], () => conn.resume()).pipe(Effect.timeoutOption(lingerMs))

      // Answers in order until the client ends its side, or until `shutdown`; a read error (reset) ends it too.
      const outcome = yield* NodeStream.fromReadable(
        () => conn,
        (cause) => new Socket.SocketGenericError({ reason: "Read", cause }),
        { closeOnDone: false }
      ).pipe(
        splitLines(config.maxFrameBytes),
        Stream.mapEffect(answerFrame),
        Stream.filterMap((reply) => reply),
        Stream.mapEffect((reply) => Effect.as(write(reply.line), reply.close)),
        Stream.takeUntil((close) => close),
        Stream.runLast,
        Effect.map((last) => (Option.getOrElse(last, () => false) ? ("shutdown" as const) : ("ended" as const))),
        Effect.catchTag("SocketError", () => Effect.succeed("reset" as const))
      )
      if (outcome === "reset" || conn.destroyed) return
      yield* endWrites
      if (outcome === "shutdown" && config.kirosuAllowShutdown) yield* Deferred.succeed(stop, undefined)
      yield* linger
    }).pipe(Effect.scoped)

  const port = Option.getOrElse(config.kirosuPort, () => 0)
  const host = kirosuBindHost(config.host, Option.isSome(config.kirosuKey))
  const server = yield* NodeSocketServer.make({ port, host, allowHalfOpen: true })
  // Every connection runs on a fiber of the server's, interrupted (socket destroyed) before the listener closes.
  yield* server
    .run(() =>
      Effect.flatMap(Effect.serviceOption(NodeSocket.NetSocket), (conn) => (Option.isSome(conn) ? serveConnection(conn.value) : Effect.void))
    )
    .pipe(
      Effect.catchAll((cause) => Effect.logWarning("kirosu listener error", cause)),
      Effect.forkScoped
    )
  if (server.address._tag !== "TcpAddress") return yield* Effect.die("the Kirosu listener is not bound to a TCP address")
  const address = server.address
  if (Option.isNone(config.kirosuKey)) yield* Console.error(noKeyWarning)
  yield* Console.log(`kiris kirosu listening tcp=${address.hostname}:${address.port}`)
  return { address: Option.some(address), stopRequested: Deferred.await(stop) } satisfies KirosuServerShape
})

export class KirosuServer extends Context.Tag("kiris/KirosuServer")<KirosuServer, KirosuServerShape>() {
  /** Listens on `kirosuPort` of the hub's host (of loopback when no `kirosuKey` is set). */
  static readonly layer: Layer.Layer<KirosuServer, SocketServer.SocketServerError, ServerConfig | KirosuAdapter | Metrics> = Layer.scoped(
    KirosuServer,
    make
  )

  /** No Kirosu port configured: nothing listens and nothing asks the hub to stop. */
  static readonly disabled: Layer.Layer<KirosuServer> = Layer.succeed(KirosuServer, {
    address: Option.none(),
    stopRequested: Effect.never
  })
}
