import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { Principal } from "../Auth.js"
import { LoginResult } from "../User.js"
import { Authentication } from "./Authentication.js"
import { InvalidInput, Unauthorized } from "./HttpErrors.js"

export class LoginRequest extends Schema.Class<LoginRequest>("LoginRequest")({
  name: Schema.String.pipe(Schema.maxLength(64)),
  password: Schema.String.pipe(Schema.maxLength(1024))
}) {}

/** Password login (the only unauthenticated endpoint) and "who am I". */
export class AuthApi extends HttpApiGroup.make("auth")
  .add(
    HttpApiEndpoint.post("login", "/api/auth/login")
      .setPayload(LoginRequest)
      .addSuccess(LoginResult)
      .addError(Unauthorized)
      .addError(InvalidInput)
  )
  .add(HttpApiEndpoint.get("whoami", "/api/auth/whoami").addSuccess(Principal).middleware(Authentication)) {}
