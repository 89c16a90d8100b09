import { HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
import { CurrentPrincipal } from "../rpc/Middleware.js"
import { Unauthorized } from "./HttpErrors.js"

/**
 * REST authentication: `authorization: Bearer <JWT | kiris_… API key>`, the same tokens the RPC
 * transports accept. Endpoints behind it read the caller from `CurrentPrincipal`.
 */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("kiris/http/Authentication", {
  security: { bearer: HttpApiSecurity.bearer },
  provides: CurrentPrincipal,
  failure: Unauthorized
}) {}
