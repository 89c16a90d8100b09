import { HttpLayerRouter, HttpServerRequest, HttpServerResponse, SocketServer } from "@effect/platform"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { RpcSchema, RpcServer } from "@effect/rpc"
import { Context, Effect, Layer, Option } from "effect"
import type * as Http from "node:http"
import type * as Net from "node:net"
import { WebSocket, WebSocketServer } from "ws"
import { ServerConfig, type ServerConfigShape } from "../../config/ServerConfig.js"
import { ClientRpcs } from "../../domain/rpc/ClientRpcs.js"
import { Waits } from "../../domain/rpc/Waits.js"
import { type Connection, makeSocketProtocol } from "./SocketProtocol.js"

const serverOptions = { disableFatalDefects: true, disableTracing: true } as const

/** A connection told to close is cut off this long after, if its client does not close its side. */
const CLOSE_GRACE_MS = 1000

const rpcKinds = new Map<string, "stream" | "unary" | "waits">(
  Array.from(ClientRpcs.requests.values()).map((rpc) => [
    rpc._tag,
    RpcSchema.isStreamSchema(rpc.successSchema)
      ? "stream"
      : Context.getOption(rpc.annotations as Context.Context<Waits>, Waits)._tag === "Some"
        ? "waits"
        : "unary"
  ])
)
const protocolOptions = (config: ServerConfigShape) => ({
  maxFrameBytes: config.maxFrameBytes,
  maxInFlight: config.maxInFlightPerConnection,
  maxRunning: config.maxRunningPerConnection,
  maxQueuedOutputBytes: config.maxQueuedOutputBytes,
  outputStallMs: config.outputStallSeconds * 1000,
  authTimeoutMs: config.authTimeoutSeconds * 1000,
  kindOf: (tag: string) => rpcKinds.get(tag)
})

const tcpConnection = (net: Net.Socket): Connection => ({
  listen: (onData, onEnd) => {
    const end = () => onEnd()
    net.on("data", onData)
    net.on("end", end)
    net.on("close", end)
    net.on("error", end)
    if (net.destroyed || net.readableEnded) end()
    return () => {
      net.off("data", onData)
      net.off("end", end)
      net.off("close", end)
      net.off("error", end)
    }
  },
  transport: "tcp",
  framing: "ndjson",
  write: (text) => {
    if (!net.destroyed && net.writable) net.write(text)
  },
  queuedBytes: () => net.writableLength,
  pause: () => net.pause(),
  resume: () => net.resume(),
  close: (lastFrame) => {
    if (net.destroyed) return
    net.end(lastFrame)
    setTimeout(() => net.destroy(), CLOSE_GRACE_MS).unref()
  }
})

/** TCP NDJSON: one RPC server over the hub's `SocketServer`. */
export const TcpRpcServer = RpcServer.layer(ClientRpcs, serverOptions).pipe(
  Layer.provide(
    Layer.scoped(
      RpcServer.Protocol,
      Effect.gen(function* () {
        const config = yield* ServerConfig
        const server = yield* SocketServer.SocketServer
        const { onSocket, protocol } = yield* makeSocketProtocol(protocolOptions(config))
        yield* (
          server
            .run(() =>
              Effect.gen(function* () {
                // the Node socket server provides the underlying socket to each connection's handler
                const net = yield* Effect.serviceOption(NodeSocket.NetSocket)
                if (Option.isNone(net)) return yield* Effect.dieMessage("the TCP RPC server needs a Node socket server")
                const socket = net.value
                // read with listeners of our own (not the platform socket's fibers), so this closes it
                yield* onSocket(tcpConnection(socket)).pipe(
                  Effect.scoped,
                  Effect.ensuring(Effect.sync(() => socket.destroyed || socket.destroySoon()))
                )
              })
            )
            // each connection's fiber starts from this context, plus its socket: keep it small (see `onSocket`)
            .pipe(
              Effect.mapInputContext((_: Context.Context<never>) => Context.empty()),
              Effect.interruptible,
              Effect.forkScoped
            )
        )
        return protocol
      })
    )
  )
)

const wsConnection = (ws: WebSocket, headers: ReadonlyArray<[string, string]>): Connection => ({
  listen: (onData, onEnd) => {
    const message = (data: WebSocket.RawData, isBinary: boolean) =>
      onData(isBinary ? (Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : new Uint8Array(data)) : data.toString())
    const end = () => onEnd()
    ws.on("message", message)
    ws.on("close", end)
    ws.on("error", end)
    if (ws.readyState === WebSocket.CLOSING || ws.readyState === WebSocket.CLOSED) end()
    return () => {
      ws.off("message", message)
      ws.off("close", end)
      ws.off("error", end)
    }
  },
  transport: "websocket",
  framing: "message",
  headers,
  write: (text) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(text)
  },
  queuedBytes: () => ws.bufferedAmount,
  pause: () => ws.pause(),
  resume: () => ws.resume(),
  close: (lastFrame, reason) => {
    if (ws.readyState !== WebSocket.OPEN) return
    ws.send(lastFrame)
    ws.close(1008, reason.slice(0, 120))
    setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref()
  }
})

/**
 * Completes a WebSocket handshake with our own `ws` server, whose `maxPayload` refuses an oversized
 * message (close code 1009) from its frame header, before any of its payload is buffered. A client
 * may not send frames before the handshake's answer (RFC 6455 §4.1), so no upgrade head is carried.
 */
const upgrade = (wss: WebSocketServer, req: Http.IncomingMessage) =>
  Effect.acquireRelease(
    Effect.async<WebSocket>((resume) => {
      wss.handleUpgrade(req, req.socket, Buffer.alloc(0), (ws) => resume(Effect.succeed(ws)))
    }),
    (ws) =>
      ws.readyState === WebSocket.CLOSED
        ? Effect.void
        : Effect.async<void>((resume) => {
            ws.once("close", () => resume(Effect.void))
            ws.close(1001)
            const timer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS)
            return Effect.sync(() => clearTimeout(timer))
          })
  )

/** WebSocket JSON messages on `GET /rpc` of the HTTP router; upgrade headers reach every request. */
export const WsRpcServer = RpcServer.layer(ClientRpcs, serverOptions).pipe(
  Layer.provide(
    Layer.scoped(
      RpcServer.Protocol,
      Effect.gen(function* () {
        const config = yield* ServerConfig
        const router = yield* HttpLayerRouter.HttpRouter
        const { onSocket, protocol } = yield* makeSocketProtocol(protocolOptions(config))
        // Messages up to twice the frame limit are still read, to be answered with the usual
        // "frame too large" Defect on a connection that stays open; larger ones are refused unread.
        const wss = yield* Effect.acquireRelease(
          Effect.sync(() => new WebSocketServer({ noServer: true, clientTracking: false, maxPayload: 2 * config.maxFrameBytes })),
          (wss) => Effect.async<void>((resume) => wss.close(() => resume(Effect.void)))
        )
        yield* router.add(
          "GET",
          "/rpc",
          Effect.gen(function* () {
            const request = yield* HttpServerRequest.HttpServerRequest
            const req = NodeHttpServerRequest.toIncomingMessage(request)
            if (req.headers.upgrade?.toLowerCase() !== "websocket") {
              return HttpServerResponse.text("this endpoint speaks RPC over WebSocket; send an Upgrade: websocket request", {
                status: 426,
                headers: { upgrade: "websocket" }
              })
            }
            const ws = yield* upgrade(wss, req)
            yield* onSocket(wsConnection(ws, Object.entries(request.headers)))
            return HttpServerResponse.empty()
          })
        )
        return protocol
      })
    )
  )
)
