import * as Reactivity from "@effect/experimental/Reactivity"
import { HttpLayerRouter, HttpServer, SocketServer } from "@effect/platform"
import { NodeHttpServer, NodeSocketServer } from "@effect/platform-node"
import { Console, Effect, Layer, Option } from "effect"
import { createServer } from "node:http"
import { ApiKeys } from "./auth/ApiKeys.js"
import { JwtSecret } from "./auth/JwtSecret.js"
import { Users } from "./auth/Users.js"
import { ServerConfig } from "./config/ServerConfig.js"
import { EventBus } from "./events/EventBus.js"
import { ProjectAccess } from "./project/ProjectAccess.js"
import { Projects } from "./project/Projects.js"
import { ProjectDb } from "./storage/ProjectDb.js"
import { RootDb } from "./storage/RootDb.js"
import { ApiRoutes } from "./transport/http/ApiRoutes.js"
import { OpsRoutes } from "./transport/http/OpsRoutes.js"
import { Metrics } from "./transport/metrics/Metrics.js"
import { AuthLive } from "./transport/rpc/AuthLive.js"
import { RpcHandlers } from "./transport/rpc/RpcHandlers.js"
import { TcpRpcServer, WsRpcServer } from "./transport/rpc/RpcServers.js"

/** Services and storage, with no transport: what handlers and tests build on. */
export const ServicesLive = Layer.mergeAll(Projects.Default, Users.Default, ApiKeys.Default, ProjectAccess.Default).pipe(
  Layer.provideMerge(ProjectDb.Default),
  Layer.provideMerge(EventBus.Default),
  Layer.provideMerge(JwtSecret.layer),
  Layer.provideMerge(RootDb.layer),
  Layer.provideMerge(Metrics.Default),
  Layer.provideMerge(Reactivity.layer)
)

const HttpLive = Layer.unwrapEffect(
  Effect.map(ServerConfig, (config) =>
    HttpLayerRouter.serve(Layer.mergeAll(WsRpcServer, OpsRoutes, ApiRoutes), { disableLogger: true, disableListenLog: true }).pipe(
      Layer.provideMerge(NodeHttpServer.layer(createServer, { port: config.port, host: config.host }))
    )
  )
)

const TcpLive = Layer.unwrapEffect(
  Effect.map(ServerConfig, (config) =>
    TcpRpcServer.pipe(Layer.provideMerge(NodeSocketServer.layer({ port: config.port === 0 && config.tcpPort === 0 ? 0 : config.tcpPort, host: config.host })))
  )
)

/** Creates the admin on first start, then prints the line scripts wait for. */
const Announce = Layer.effectDiscard(
  Effect.gen(function* () {
    const users = yield* Users
    const created = yield* users.bootstrap
    if (Option.isSome(created)) {
      yield* Console.log(`kiris created user admin; admin API key written to ${created.value.keyFile} (password in ${created.value.passwordFile})`)
    }
    const http = (yield* HttpServer.HttpServer).address as HttpServer.TcpAddress
    const tcp = (yield* SocketServer.SocketServer).address as SocketServer.TcpAddress
    yield* Console.log(`kiris listening http=http://${http.hostname}:${http.port} tcp=${tcp.hostname}:${tcp.port}`)
  })
)

/** The whole hub: services, both transports and the start-up announcement. Needs only ServerConfig. */
export const HubLayer = Layer.mergeAll(HttpLive, TcpLive).pipe(
  Layer.provide(RpcHandlers),
  Layer.provide(AuthLive),
  (transports) => Announce.pipe(Layer.provideMerge(transports)),
  Layer.provideMerge(ServicesLive)
)
