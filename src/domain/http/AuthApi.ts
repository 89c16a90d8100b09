import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { Principal } from "../Auth.js"
import { LoginResult } from "../User.js"
import { Authentication } from "./Authentication.js"
import { InvalidInput, TooManyRequests, Unauthorized } from "./HttpErrors.js"

export class LoginRequest extends Schema.Class<LoginRequest>("LoginRequest")({
  name: Schema.String.pipe(Schema.maxLength(64)),
  password: Schema.String.pipe(Schema.maxLength(1024))
}) {}

/**
 * Password login (the only unauthenticated endpoint) and "who am I". Repeated failed logins for one
 * user name are refused for a while with `TooManyRequests` (429).
 */
export class AuthApi extends HttpApiGroup.make("auth")
  .add(
    HttpApiEndpoint.post("login", "/api/auth/login")
      .setPayload(LoginRequest)
      .addSuccess(LoginResult)
      .addError(Unauthorized)
      .addError(InvalidInput)
      .addError(TooManyRequests)
      .annotate(Requires, Access.public)
  )
  .add(HttpApiEndpoint.get("whoami", "/api/auth/whoami").addSuccess(Principal).middleware(Authentication).annotate(Requires, Access.self)) {}
