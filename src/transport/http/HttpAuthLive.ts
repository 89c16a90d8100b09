import { HttpServerRequest } from "@effect/platform"
import { Effect, Layer } from "effect"
import { ApiKeys } from "../../auth/ApiKeys.js"
import { Authentication } from "../../domain/http/Authentication.js"

/**
 * REST bearer authentication. The raw `authorization` header goes to `ApiKeys.authenticate`, the
 * same parser the RPC transports use, so both accept and reject exactly the same tokens.
 */
export const HttpAuthLive = Layer.effect(
  Authentication,
  Effect.map(ApiKeys, (keys) =>
    Authentication.of({
      bearer: () => Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => keys.authenticate(request.headers["authorization"]))
    })
  )
)
