import { Headers, Socket } from "@effect/platform"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { RpcClient, RpcMiddleware, RpcSerialization } from "@effect/rpc"
import type { RpcClientError } from "@effect/rpc/RpcClientError"
import { Context, Duration, Effect, Layer, type Scope } from "effect"
import * as Net from "node:net"
import { WebSocket } from "ws"
import { AuthMiddleware } from "../domain/rpc/Middleware.js"
import { ClientRpcs } from "../domain/rpc/ClientRpcs.js"

export type HubRpcClient = RpcClient.FromGroup<typeof ClientRpcs, RpcClientError>

/** A connected client of the hub's RPC protocol (CLI, worker, tests). */
export class HubClient extends Context.Tag("kiris/HubClient")<HubClient, HubRpcClient>() {}

export type HubTarget =
  { readonly transport: "tcp"; readonly host: string; readonly port: number } | { readonly transport: "ws"; readonly url: string }

/** Parses `host:port` (TCP) or `ws://…`/`http://…` (WebSocket) as given to `--hub`. */
export const parseHub = (hub: string): HubTarget => {
  if (/^(ws|wss|http|https):\/\//.test(hub)) {
    const url = new URL(hub.replace(/^http/, "ws"))
    if (url.pathname === "/" || url.pathname === "") url.pathname = "/rpc"
    return { transport: "ws", url: url.toString() }
  }
  const m = hub.match(/^(.*):(\d+)$/)
  return m ? { transport: "tcp", host: m[1] || "127.0.0.1", port: Number(m[2]) } : { transport: "tcp", host: hub, port: 7421 }
}

/** Parses a comma-separated list of hub addresses (`--hub a:7421,b:7421`), each as `parseHub` does. */
export const parseHubs = (hubs: string): ReadonlyArray<HubTarget> =>
  hubs
    .split(",")
    .map((h) => h.trim())
    .filter((h) => h !== "")
    .map(parseHub)

/** How a target is written in logs. */
export const showHub = (target: HubTarget) => (target.transport === "tcp" ? `${target.host}:${target.port}` : target.url)

/** How long one address may take to accept a TCP connection before the next is tried. */
const OPEN_TIMEOUT = Duration.seconds(5)

/** One TCP connection attempt; the connection is closed with the socket's run scope. */
const openNet = (target: { readonly host: string; readonly port: number }) =>
  Effect.acquireRelease(
    Effect.async<Net.Socket, Socket.SocketError>((resume) => {
      const conn = Net.createConnection({ host: target.host, port: target.port, noDelay: true })
      conn.once("connect", () => resume(Effect.succeed(conn)))
      // kept for the connection's life (as NodeSocket does): a later error must not go unhandled
      conn.on("error", (cause) => resume(Effect.fail(new Socket.SocketGenericError({ reason: "Open", cause }))))
      return Effect.sync(() => conn.destroy())
    }).pipe(
      Effect.timeoutFail({
        duration: OPEN_TIMEOUT,
        onTimeout: () => new Socket.SocketGenericError({ reason: "OpenTimeout", cause: new Error(`no answer from ${target.host}:${target.port}`) })
      })
    ),
    (conn) => Effect.sync(() => conn.destroy())
  )

/**
 * Where a client with several hub addresses is connected: every (re)connection tries the addresses in
 * turn, starting after the one it was last connected to (a hub that dropped the connection is tried
 * last), and keeps the first that answers.
 */
export interface HubFailover {
  /** The address of the current connection; undefined while there is none. */
  readonly connectedTo: () => HubTarget | undefined
}

const failoverSocket = (targets: ReadonlyArray<HubTarget>): { readonly socket: Layer.Layer<Socket.Socket>; readonly failover: HubFailover } => {
  let current: number | undefined
  let from = 0
  const failover: HubFailover = { connectedTo: () => (current === undefined ? undefined : targets[current]) }
  const pick = () => {
    const start = current === undefined ? from : (current + 1) % targets.length
    current = undefined
    from = start
    return targets.map((_, i) => (start + i) % targets.length)
  }
  if (targets.every((t) => t.transport === "tcp")) {
    const open = Effect.suspend(() =>
      Effect.firstSuccessOf(
        pick().map((i) => {
          const t = targets[i] as { readonly host: string; readonly port: number }
          return Effect.tap(openNet(t), () => Effect.sync(() => (current = i)))
        })
      )
    )
    return { socket: Layer.effect(Socket.Socket, NodeSocket.fromDuplex(open)), failover }
  }
  // WebSocket URLs: each (re)connection takes the next address
  const url = Effect.sync(() => {
    const i = pick()[0]!
    current = i
    return (targets[i] as { readonly url: string }).url
  })
  return {
    socket: Layer.effect(Socket.Socket, Socket.makeWebSocket(url)).pipe(
      Layer.provide(Layer.succeed(Socket.WebSocketConstructor, (u, protocols) => new WebSocket(u, protocols) as unknown as globalThis.WebSocket))
    ),
    failover
  }
}

const protocol = (target: HubTarget, retryTransientErrors: boolean) =>
  target.transport === "tcp"
    ? RpcClient.layerProtocolSocket({ retryTransientErrors }).pipe(
        Layer.provide(NodeSocket.layerNet({ host: target.host, port: target.port, noDelay: true })),
        Layer.provide(RpcSerialization.layerNdjson)
      )
    : RpcClient.layerProtocolSocket({ retryTransientErrors }).pipe(
        Layer.provide(Socket.layerWebSocket(target.url)),
        Layer.provide(
          Layer.succeed(Socket.WebSocketConstructor, (url, protocols) => new WebSocket(url, protocols) as unknown as globalThis.WebSocket)
        ),
        Layer.provide(RpcSerialization.layerJson)
      )

/**
 * Sets `authorization: Bearer <token>` on every request unless the call set its own header (so
 * per-call tokens work too).
 */
const authLayer = (token: string | undefined) =>
  RpcMiddleware.layerClient(AuthMiddleware, ({ request }) =>
    Effect.succeed(
      token === undefined || request.headers["authorization"] !== undefined
        ? request
        : { ...request, headers: Headers.set(request.headers, "authorization", `Bearer ${token}`) }
    )
  )

/** Connects for the lifetime of the caller's scope. */
export const makeHubClient = (target: HubTarget, token: string | undefined, options: { readonly retryTransientErrors?: boolean } = {}) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(Layer.mergeAll(protocol(target, options.retryTransientErrors ?? false), authLayer(token)))
    return yield* RpcClient.make(ClientRpcs).pipe(Effect.provide(context))
  }) as Effect.Effect<HubRpcClient, never, Scope.Scope>

/**
 * A client of one hub among several equivalent ones (hubs sharing one database): it connects to the
 * first address that answers and, when that connection drops, reconnects to the next that does. All
 * addresses are TCP `host:port`, or all WebSocket URLs.
 */
export const makeFailoverHubClient = (targets: ReadonlyArray<HubTarget>, token: string | undefined) =>
  Effect.gen(function* () {
    const { failover, socket } = failoverSocket(targets)
    const serialization = targets[0]?.transport === "ws" ? RpcSerialization.layerJson : RpcSerialization.layerNdjson
    const protocolLayer = RpcClient.layerProtocolSocket().pipe(Layer.provide(socket), Layer.provide(serialization))
    const context = yield* Layer.build(Layer.mergeAll(protocolLayer, authLayer(token)))
    const client = yield* RpcClient.make(ClientRpcs).pipe(Effect.provide(context))
    return { client, failover }
  }) as Effect.Effect<{ readonly client: HubRpcClient; readonly failover: HubFailover }, never, Scope.Scope>

export const layerHubClient = (target: HubTarget, token: string | undefined) => Layer.scoped(HubClient, makeHubClient(target, token))
