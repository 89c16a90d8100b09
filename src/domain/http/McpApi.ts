import { Context } from "effect"
import { Access, Requires } from "../Access.js"

/**
 * `/mcp`: the hub's MCP endpoint (Streamable HTTP: `POST` JSON-RPC messages, `GET` the server's
 * event stream, `DELETE` the session). It is a raw route beside the REST API, not part of it; what
 * it needs is declared here like any REST endpoint's. Reaching it takes an authenticated user or
 * API key with the `read` scope (worker keys are refused); each tool call is then checked by the
 * RPC it makes, with the caller's own token.
 */
export const McpEndpoint = {
  id: "mcp.endpoint",
  path: "/mcp",
  annotations: Context.make(Requires, Access.authenticated("read"))
} as const

/** Raw HTTP routes that declare an access requirement outside the HttpApi (for the auth matrix). */
export const RawRoutes: ReadonlyArray<{ readonly id: string; readonly annotations: Context.Context<Requires> }> = [McpEndpoint]
