import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { CreateUser, User } from "../User.js"
import { Authentication } from "./Authentication.js"
import { Conflict, Forbidden, InvalidInput } from "./HttpErrors.js"

/** Server users (server admins only). */
export class UsersApi extends HttpApiGroup.make("users")
  .add(HttpApiEndpoint.get("list", "/api/users").addSuccess(Schema.Array(User)).addError(Forbidden))
  .add(
    HttpApiEndpoint.post("create", "/api/users")
      .setPayload(CreateUser)
      .addSuccess(User, { status: 201 })
      .addError(Forbidden)
      .addError(Conflict)
      .addError(InvalidInput)
  )
  .middleware(Authentication) {}
