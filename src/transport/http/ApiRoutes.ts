import { HttpApiSwagger, HttpLayerRouter } from "@effect/platform"
import { Layer } from "effect"
import { Api } from "../../domain/http/Api.js"
import { McpHttpRoutes } from "../../mcp/McpHttp.js"
import { ApiHandlers } from "./ApiHandlers.js"
import { BodyGuard } from "./BodyGuard.js"
import { HttpAuthLive } from "./HttpAuthLive.js"
import { RequestMetrics } from "./RequestMetrics.js"

/**
 * The REST API on the hub's HTTP router: `/api/...`, its OpenAPI 3.1 document at `/openapi.json`,
 * Swagger UI at `/docs` (the UI's bundle is inlined in the page, so it works offline), and the
 * request counter that covers every route of the router. REST bodies pass the BodyGuard. `/mcp`
 * (MCP over Streamable HTTP, src/mcp/McpHttp.ts) is mounted beside them.
 */
export const ApiRoutes = Layer.mergeAll(
  HttpLayerRouter.addHttpApi(Api, { openapiPath: "/openapi.json" }).pipe(
    Layer.provide(ApiHandlers),
    Layer.provide(HttpAuthLive),
    Layer.provide(BodyGuard.layer)
  ),
  HttpApiSwagger.layerHttpLayerRouter({ api: Api, path: "/docs" }),
  McpHttpRoutes,
  RequestMetrics
)
