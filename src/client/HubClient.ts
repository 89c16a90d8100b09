import { Headers, Socket } from "@effect/platform"
import { NodeSocket } from "@effect/platform-node"
import { RpcClient, RpcMiddleware, RpcSerialization } from "@effect/rpc"
import type { RpcClientError } from "@effect/rpc/RpcClientError"
import { Context, Effect, Layer, type Scope } from "effect"
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

export const layerHubClient = (target: HubTarget, token: string | undefined) => Layer.scoped(HubClient, makeHubClient(target, token))
