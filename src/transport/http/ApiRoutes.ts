import { HttpLayerRouter } from "@effect/platform"
import { Effect, Layer, Scope } from "effect"
import { Api } from "../../domain/http/Api.js"
import { McpHttpRoutes } from "../../mcp/McpHttp.js"
import { ApiHandlers } from "./ApiHandlers.js"
import { BodyGuard } from "./BodyGuard.js"
import { HttpAuthLive } from "./HttpAuthLive.js"
import { RequestMetrics } from "./RequestMetrics.js"

/**
 * The REST API on the hub's HTTP router: `/api/...`, its OpenAPI 3.1 document at `/openapi.json`,
 * Swagger UI at `/docs` (the UI's bundle is inlined in the page, so it works offline; see DocsRoute), and the
 * request counter that covers every route of the router. REST bodies pass the BodyGuard. `/mcp`
 * (MCP over Streamable HTTP, src/mcp/McpHttp.ts) is mounted beside them.
 */
/**
 * Swagger UI at `/docs`. The page is large (about 2 MB, the UI's bundle inlined), so its module is
 * loaded and the page built on the first request, not when the hub starts.
 */
const DocsRoute = HttpLayerRouter.use((router) =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const docs = yield* Effect.cached(
      Effect.promise(() => import("@effect/platform/HttpApiSwagger")).pipe(
        Effect.flatMap((Swagger) => HttpLayerRouter.toHttpEffect(Swagger.layerHttpLayerRouter({ api: Api, path: "/docs" }))),
        // a router of its own, not the hub's (which the request's memo map would share)
        Effect.provideServiceEffect(Layer.CurrentMemoMap, Layer.makeMemoMap),
        Scope.extend(scope)
      )
    )
    yield* router.add("GET", "/docs", Effect.flatten(docs))
  })
)

export const ApiRoutes = Layer.mergeAll(
  HttpLayerRouter.addHttpApi(Api, { openapiPath: "/openapi.json" }).pipe(
    Layer.provide(ApiHandlers),
    Layer.provide(HttpAuthLive),
    Layer.provide(BodyGuard.layer)
  ),
  DocsRoute,
  McpHttpRoutes,
  RequestMetrics
)
