import { HttpLayerRouter, HttpServerRequest, HttpServerResponse, SocketServer } from "@effect/platform"
import { RpcSchema, RpcServer } from "@effect/rpc"
import { Effect, Layer } from "effect"
import { ServerConfig } from "../../config/ServerConfig.js"
import { ClientRpcs } from "../../domain/rpc/ClientRpcs.js"
import { makeSocketProtocol } from "./SocketProtocol.js"

const serverOptions = { disableFatalDefects: true, disableTracing: true } as const

const streamTags = new Set<string>(
  Array.from(ClientRpcs.requests.values())
    .filter((rpc) => RpcSchema.isStreamSchema(rpc.successSchema))
    .map((rpc) => rpc._tag)
)
const protocolOptions = (maxFrameBytes: number) => ({ maxFrameBytes, isStream: (tag: string) => streamTags.has(tag) })

/** TCP NDJSON: one RPC server over the hub's `SocketServer`. */
export const TcpRpcServer = RpcServer.layer(ClientRpcs, serverOptions).pipe(
  Layer.provide(
    Layer.scoped(
      RpcServer.Protocol,
      Effect.gen(function* () {
        const config = yield* ServerConfig
        const server = yield* SocketServer.SocketServer
        const { onSocket, protocol } = yield* makeSocketProtocol(protocolOptions(config.maxFrameBytes))
        yield* server.run((socket) => Effect.scoped(onSocket(socket, "tcp", "ndjson"))).pipe(Effect.interruptible, Effect.forkScoped)
        return protocol
      })
    )
  )
)

/** WebSocket JSON messages on `GET /rpc` of the HTTP router; upgrade headers reach every request. */
export const WsRpcServer = RpcServer.layer(ClientRpcs, serverOptions).pipe(
  Layer.provide(
    Layer.scoped(
      RpcServer.Protocol,
      Effect.gen(function* () {
        const config = yield* ServerConfig
        const router = yield* HttpLayerRouter.HttpRouter
        const { onSocket, protocol } = yield* makeSocketProtocol(protocolOptions(config.maxFrameBytes))
        yield* router.add(
          "GET",
          "/rpc",
          Effect.gen(function* () {
            const request = yield* HttpServerRequest.HttpServerRequest
            const socket = yield* Effect.orDie(request.upgrade)
            yield* onSocket(socket, "websocket", "message", Object.entries(request.headers))
            return HttpServerResponse.empty()
          })
        )
        return protocol
      })
    )
  )
)
