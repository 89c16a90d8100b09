import { HttpServer, SocketServer } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { ConfigProvider, Context, Effect, Layer, Option, Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { HubLayer } from "../../src/AppLayer.js"
import { makeHubClient } from "../../src/client/HubClient.js"
import { ServerConfig, type ServerConfigShape } from "../../src/config/ServerConfig.js"
import { KirosuServer } from "../../src/transport/kirosu/KirosuServer.js"
import { tempDir } from "./TempDir.js"

export interface TestHub {
  readonly dataDir: string
  readonly httpPort: number
  readonly tcpPort: number
  readonly httpUrl: string
  readonly wsUrl: string
  readonly adminKey: string
  readonly tcpClient: (token?: string) => ReturnType<typeof makeHubClient>
  readonly wsClient: (token?: string) => ReturnType<typeof makeHubClient>
  /** The hub's own services, to run server-side effects (e.g. a tool call) inside this hub. */
  readonly context: Context.Context<Layer.Layer.Success<typeof HubLayer>>
  /** The Kirosu-compatible port, when started with `kirosuPort` (e.g. `Option.some(0)`). */
  readonly kirosuPort: number | undefined
}

export { tempDir } from "./TempDir.js"

/**
 * Runs a whole hub in this process on ports 0 with its data in `dataDir` (a fresh temp dir by
 * default), for the lifetime of the caller's scope. Run it again on the same dir to "restart".
 */
export const startHub = (options: Partial<ServerConfigShape> = {}) =>
  Effect.gen(function* () {
    // removed when the test finishes, not with the hub: a test may start a second hub on the same data
    const dataDir = options.dataDir ?? tempDir()
    const config = ServerConfig.layerWith({ port: 0, tcpPort: 0, ...options, dataDir })
    const scope = yield* Scope.Scope
    const context = yield* Layer.buildWithScope(HubLayer.pipe(Layer.provide(config), Layer.provide(NodeContext.layer)), scope)
    const http = Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress
    const tcp = Context.get(context, SocketServer.SocketServer).address as SocketServer.TcpAddress
    const adminKey = fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim()
    const hub: TestHub = {
      dataDir,
      httpPort: http.port,
      tcpPort: tcp.port,
      httpUrl: `http://127.0.0.1:${http.port}`,
      wsUrl: `ws://127.0.0.1:${http.port}/rpc`,
      adminKey,
      tcpClient: (token = adminKey) => makeHubClient({ transport: "tcp", host: "127.0.0.1", port: tcp.port }, token),
      wsClient: (token = adminKey) => makeHubClient({ transport: "ws", url: `ws://127.0.0.1:${http.port}/rpc` }, token),
      context,
      kirosuPort: Option.getOrUndefined(Option.map(Context.get(context, KirosuServer).address, (a) => a.port))
    }
    return hub
  })

/** A hub whose default model is an OpenAI-compatible endpoint no test calls (sessions can be created). */
export const startHubWithIdleModel = (options: Partial<ServerConfigShape> = {}) =>
  startHub(options).pipe(
    Effect.withConfigProvider(
      ConfigProvider.fromMap(
        new Map([
          ["KIRIS_MODEL", "openai-compatible:none"],
          ["KIRIS_OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:9/v1"]
        ])
      )
    )
  )
