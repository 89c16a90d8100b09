import { Effect, Layer } from "effect"
import { ApiKeys } from "../../auth/ApiKeys.js"
import { AuthMiddleware } from "../../domain/rpc/Middleware.js"

/** The RPC auth middleware for both transports: `authorization: Bearer <JWT | kiris_… key>`. */
export const AuthLive = Layer.effect(
  AuthMiddleware,
  Effect.map(ApiKeys, (keys) => AuthMiddleware.of(({ headers }) => keys.authenticate(headers["authorization"])))
)
