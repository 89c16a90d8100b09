import { RpcMiddleware } from "@effect/rpc"
import { Context } from "effect"
import { Principal } from "../Auth.js"
import { Unauthorized } from "../Errors.js"

export class CurrentPrincipal extends Context.Tag("kiris/CurrentPrincipal")<CurrentPrincipal, Principal>() {}

/** Reads `authorization: Bearer <token>` from each request's headers (or the WebSocket upgrade). */
export class AuthMiddleware extends RpcMiddleware.Tag<AuthMiddleware>()("kiris/AuthMiddleware", {
  provides: CurrentPrincipal,
  failure: Unauthorized,
  requiredForClient: true
}) {}
