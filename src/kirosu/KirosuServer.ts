import { SocketServer } from "@effect/platform"
import { Cause, Console, Context, Deferred, Effect, FiberSet, Layer, Option, Queue, Redacted } from "effect"
import * as crypto from "node:crypto"
import * as net from "node:net"
import { ServerConfig } from "../config/ServerConfig.js"
import { Metrics } from "../transport/metrics/Metrics.js"
import { KirosuAdapter } from "./KirosuAdapter.js"
import { encodeReply, type Frame, makeLineSplitter, parseLine } from "./KirosuProtocol.js"

/**
 * The Kirosu-compatible TCP listener (`kiris serve --kirosu-port`): newline-delimited JSON, one
 * long-lived connection per client, requests answered strictly in order with exactly one line each.
 * It owns sockets, framing, the shared-key check and `shutdown`; KirosuAdapter runs the methods.
 * Without a key the port is open to any process that reaches it: it then binds to loopback only and
 * the adapter refuses `python` tasks, which `--trust-shell` workers would run as code.
 */
export interface KirosuServerShape {
  /** Where the listener is bound; none when no Kirosu port is configured. */
  readonly address: Option.Option<SocketServer.TcpAddress>
  /** Completes once a client sent `shutdown` to a hub started with `kirosuAllowShutdown`. */
  readonly stopRequested: Effect.Effect<void>
}

type Inbound = Frame | { readonly _tag: "End" } | { readonly _tag: "Closed" }

/** Lines buffered per connection before reading from it pauses. */
const highWater = 1024
const lowWater = 256
/** After `shutdown`, how long the hub waits for the client to close before dropping the socket. */
const lingerMs = 5_000

const digest = (s: string) => crypto.createHash("sha256").update(s).digest()

/** Whether `host` names only this machine (`localhost`, `127.x.x.x`, `::1`). */
export const isLoopbackHost = (host: string): boolean => {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1")
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

  const answer = (text: string): Effect.Effect<{ readonly line: string; readonly close: boolean } | undefined> => {
    const parsed = parseLine(text)
    if (parsed._tag === "Blank") return Effect.succeed(undefined)
    if (parsed._tag === "Invalid") {
      metrics.inc("kiris_rpc_frame_errors_total", { transport: "kirosu", reason: "malformed" })
      return Effect.succeed({ line: encodeReply(parsed.id, { error: parsed.message }), close: false })
    }
    const { id, method, params } = parsed.request
    const tag = `kirosu.${adapter.methods.includes(method) || method === "shutdown" ? method : "unknown"}`
    const reply = (outcome: { readonly result: object } | { readonly error: string }, close = false) => {
      metrics.inc("kiris_rpc_calls_total", { tag, outcome: "result" in outcome ? "success" : "failure" })
      return { line: encodeReply(id, outcome), close }
    }
    if (!authorized(params)) return Effect.succeed(reply({ error: "Invalid KIRO_SWARM_KEY" }))
    if (method === "shutdown") return Effect.succeed(reply({ result: { ok: true } }, true))
    return adapter.call(method, params).pipe(
      Effect.map((result) => reply({ result })),
      Effect.catchTag("KirosuError", (e) => Effect.succeed(reply({ error: e.message }))),
      Effect.catchAllCause((cause) =>
        Effect.logError("kirosu request failed", cause).pipe(
          Effect.as(reply({ error: `Internal error: ${Cause.pretty(cause).split("\n")[0]}` }))
        )
      )
    )
  }

  const serveConnection = (conn: net.Socket) =>
    Effect.gen(function* () {
      const inbox = yield* Queue.unbounded<Inbound>()
      const splitter = makeLineSplitter(config.maxFrameBytes)
      let buffered = 0
      const offer = (items: ReadonlyArray<Inbound>) => {
        for (const item of items) Queue.unsafeOffer(inbox, item)
        buffered += items.length
        if (buffered > highWater && !conn.isPaused()) conn.pause()
      }
      const onData = (chunk: Buffer) => offer(splitter.push(chunk))
      const onEnd = () => offer([...splitter.end(), { _tag: "End" }])
      const onClose = () => offer([{ _tag: "Closed" }])
      const onError = () => {}
      conn.on("data", onData).on("end", onEnd).on("close", onClose).on("error", onError)
      conn.setNoDelay(true)
      metrics.inc("kiris_connections_total", { transport: "kirosu" })
      metrics.add("kiris_open_connections", { transport: "kirosu" }, 1)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          metrics.add("kiris_open_connections", { transport: "kirosu" }, -1)
          conn.off("data", onData).off("end", onEnd).off("close", onClose)
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

      while (true) {
        const item = yield* Queue.take(inbox)
        buffered--
        if (buffered < lowWater && conn.isPaused()) conn.resume()
        if (item._tag === "Closed") return
        if (item._tag === "End") {
          yield* endWrites
          return yield* linger
        }
        if (item._tag === "Oversize") {
          metrics.inc("kiris_rpc_frame_errors_total", { transport: "kirosu", reason: "oversized" })
          yield* write(encodeReply(null, { error: `Line too long: ${item.bytes} bytes exceeds the limit of ${config.maxFrameBytes} bytes` }))
          continue
        }
        const reply = yield* answer(item.text)
        if (reply === undefined) continue
        yield* write(reply.line)
        if (reply.close) {
          yield* endWrites
          if (config.kirosuAllowShutdown) yield* Deferred.succeed(stop, undefined)
          return yield* linger
        }
      }
    }).pipe(Effect.scoped)

  const server = net.createServer({ allowHalfOpen: true })
  // Closed after every connection fiber below is interrupted (finalizers run in reverse order).
  yield* Effect.addFinalizer(() => Effect.async<void>((resume) => void server.close(() => resume(Effect.void))))
  const connections = yield* FiberSet.make<void>()
  const fork = yield* FiberSet.runtime(connections)<never>()
  server.on("connection", (conn) => void fork(serveConnection(conn)))

  const port = Option.getOrElse(config.kirosuPort, () => 0)
  const host = kirosuBindHost(config.host, Option.isSome(config.kirosuKey))
  yield* Effect.async<void, SocketServer.SocketServerError>((resume) => {
    const onError = (cause: Error) => resume(Effect.fail(new SocketServer.SocketServerError({ reason: "Open", cause })))
    server.once("error", onError)
    server.listen({ port, host }, () => {
      server.off("error", onError)
      server.on("error", (cause) => void fork(Effect.logWarning("kirosu listener error", cause)))
      resume(Effect.void)
    })
  })
  const bound = server.address() as net.AddressInfo
  const address: SocketServer.TcpAddress = { _tag: "TcpAddress", hostname: bound.address, port: bound.port }
  if (Option.isNone(config.kirosuKey)) yield* Console.error(noKeyWarning)
  yield* Console.log(`kiris kirosu listening tcp=${address.hostname}:${address.port}`)
  return { address: Option.some(address), stopRequested: Deferred.await(stop) } satisfies KirosuServerShape
})

export class KirosuServer extends Context.Tag("kiris/KirosuServer")<KirosuServer, KirosuServerShape>() {
  /** Listens on `kirosuPort` of the hub's host (of loopback when no `kirosuKey` is set). */
  static readonly layer: Layer.Layer<KirosuServer, SocketServer.SocketServerError, ServerConfig | KirosuAdapter | Metrics> =
    Layer.scoped(KirosuServer, make)

  /** No Kirosu port configured: nothing listens and nothing asks the hub to stop. */
  static readonly disabled: Layer.Layer<KirosuServer> = Layer.succeed(KirosuServer, {
    address: Option.none(),
    stopRequested: Effect.never
  })
}
