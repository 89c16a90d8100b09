import * as Reactivity from "@effect/experimental/Reactivity"
import { HttpLayerRouter, HttpServer, SocketServer } from "@effect/platform"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import { Console, Duration, Effect, Layer, Option, Schedule } from "effect"
import { AccessControl } from "./auth/AccessControl.js"
import { ApiKeys } from "./auth/ApiKeys.js"
import { JwtSecret } from "./auth/JwtSecret.js"
import { Revocations } from "./auth/Revocations.js"
import { Users } from "./auth/Users.js"
import { ServerConfig } from "./config/ServerConfig.js"
import { EventBus } from "./events/EventBus.js"
import { FileService } from "./files/FileService.js"
import { Inbox } from "./inbox/Inbox.js"
import { KirosuAdapter } from "./transport/kirosu/KirosuAdapter.js"
import { KirosuServer } from "./transport/kirosu/KirosuServer.js"
import { Permission } from "./permission/Permission.js"
import { Presence } from "./presence/Presence.js"
import { ProjectAccess } from "./project/ProjectAccess.js"
import { Projects } from "./project/Projects.js"
import { QueueLive } from "./queue/QueueLive.js"
import { TaskAccess } from "./queue/TaskAccess.js"
import { ProjectDb } from "./storage/ProjectDb.js"
import { DatabaseLive } from "./storage/Database.js"
import { ToolRegistry } from "./tools/ToolRegistry.js"
import { ApiRoutes } from "./transport/http/ApiRoutes.js"
import { makeNodeServer } from "./transport/http/NodeServer.js"
import { OpsRoutes } from "./transport/http/OpsRoutes.js"
import { Metrics } from "./transport/metrics/Metrics.js"
import { Orchestrator } from "./orchestrator/Orchestrator.js"
import { Session } from "./session/Session.js"
import { AuthLive } from "./transport/rpc/AuthLive.js"
import { RpcHandlers } from "./transport/rpc/RpcHandlers.js"
import { TcpRpcServer, WsRpcServer } from "./transport/rpc/RpcServers.js"

/** Services and storage, with no transport: what handlers and tests build on. */
export const ServicesLive = Layer.mergeAll(
  Projects.Default,
  Users.Default,
  ApiKeys.Default,
  AccessControl.Default,
  Revocations.Default,
  ProjectAccess.Default,
  Permission.Default,
  ToolRegistry.Default,
  Session.Default,
  Orchestrator.Default,
  TaskAccess.Default,
  Presence.Default,
  Inbox.Default
).pipe(
  // Provided (not merged) so that the orchestrator and the tools find it when they are built.
  Layer.provideMerge(FileService.Default),
  Layer.provideMerge(QueueLive),
  Layer.provideMerge(ProjectDb.Default),
  Layer.provideMerge(EventBus.Default),
  Layer.provideMerge(JwtSecret.layer),
  Layer.provideMerge(DatabaseLive),
  Layer.provideMerge(Metrics.Default),
  Layer.provideMerge(Reactivity.layer)
)

const HttpLive = Layer.unwrapEffect(
  Effect.map(ServerConfig, (config) => {
    const node = makeNodeServer()
    // released in this order on shutdown: refuse new connections, close the routes (WebSockets
    // with 1001), cut what is left, stop listening
    return node.refuseNew.pipe(
      Layer.provideMerge(HttpLayerRouter.serve(Layer.mergeAll(WsRpcServer, OpsRoutes, ApiRoutes), { disableLogger: true, disableListenLog: true })),
      Layer.provideMerge(node.cutRemaining),
      Layer.provideMerge(NodeHttpServer.layer(() => node.server, { port: config.port, host: config.host }))
    )
  })
)

const TcpLive = Layer.unwrapEffect(
  Effect.map(ServerConfig, (config) =>
    TcpRpcServer.pipe(
      Layer.provideMerge(
        NodeSocketServer.layer({ port: config.port === 0 && config.tcpPort === 0 ? 0 : config.tcpPort, host: config.host, noDelay: true })
      )
    )
  )
)

/**
 * The Kirosu-compatible port, only when `kirosuPort` is set (otherwise a KirosuServer with no
 * address). Built after Announce, so the admin user exists before the first Kirosu request.
 */
const KirosuLive = Layer.unwrapEffect(
  Effect.map(ServerConfig, (config) =>
    Option.isSome(config.kirosuPort) ? KirosuServer.layer.pipe(Layer.provide(KirosuAdapter.Default)) : KirosuServer.disabled
  )
)

/**
 * Creates the admin on first start, then prints the line scripts wait for. Built after the
 * transports, so on shutdown its finalizer runs before theirs: it lets the unary requests already
 * being handled finish (for up to `shutdownGraceSeconds`) before the RPC servers interrupt what is
 * left. Finalizers run uninterruptibly, so the wait itself is made interruptible: otherwise the
 * timeout could not stop it, and a request that never ends would hold the hub up.
 */
const Announce = Layer.scopedDiscard(
  Effect.gen(function* () {
    const metrics = yield* Metrics
    const config = yield* ServerConfig
    const drained = Effect.suspend(() => (metrics.value("kiris_rpc_in_flight") > 0 ? Effect.fail("busy" as const) : Effect.void)).pipe(
      Effect.retry(Schedule.spaced("20 millis")),
      Effect.ignore
    )
    yield* Effect.addFinalizer(() =>
      Effect.interruptible(drained).pipe(Effect.timeoutOption(Duration.seconds(Math.max(0, config.shutdownGraceSeconds))), Effect.asVoid)
    )
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
  (announced) => KirosuLive.pipe(Layer.provideMerge(announced)),
  Layer.provideMerge(ServicesLive)
)
