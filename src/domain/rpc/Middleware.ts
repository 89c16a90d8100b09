import { RpcMiddleware } from "@effect/rpc"
import { Context, Schema } from "effect"
import { Principal } from "../Auth.js"
import { Forbidden, NotFound, Unauthorized } from "../Errors.js"

export class CurrentPrincipal extends Context.Tag("kiris/CurrentPrincipal")<CurrentPrincipal, Principal>() {}

/**
 * The one way into every RPC: reads `authorization: Bearer <token>` from each request's headers (or
 * the WebSocket upgrade), checks the requirement the RPC declares (`Requires` in domain/Access.ts)
 * and runs the handler as that caller, inside the project's database scope when the RPC names one
 * project. A project the caller may not see is `NotFound`; one they see but may not change is
 * `Forbidden`. A stream ends with `Forbidden` as soon as the caller loses access.
 */
export class AuthMiddleware extends RpcMiddleware.Tag<AuthMiddleware>()("kiris/AuthMiddleware", {
  provides: CurrentPrincipal,
  failure: Schema.Union(Unauthorized, Forbidden, NotFound),
  requiredForClient: true,
  wrap: true
}) {}
