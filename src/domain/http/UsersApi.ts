import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { CreateUser, User } from "../User.js"
import { Authentication } from "./Authentication.js"
import { Conflict, Forbidden, InvalidInput, NotFound } from "./HttpErrors.js"

/** Server users (server admins only). */
export class UsersApi extends HttpApiGroup.make("users")
  .add(HttpApiEndpoint.get("list", "/api/users").addSuccess(Schema.Array(User)).addError(Forbidden).annotate(Requires, Access.serverAdmin("read")))
  .add(
    HttpApiEndpoint.post("create", "/api/users")
      .setPayload(CreateUser)
      .addSuccess(User, { status: 201 })
      .addError(Forbidden)
      .addError(Conflict)
      .addError(InvalidInput)
      .annotate(Requires, Access.serverAdmin("write"))
  )
  .add(
    HttpApiEndpoint.del("delete", "/api/users/:user")
      .setPath(Schema.Struct({ user: Schema.String }))
      .addError(Forbidden)
      .addError(NotFound)
      .addError(InvalidInput)
      .annotate(Requires, Access.serverAdmin("write"))
  )
  // Every operation here can be refused by the authorization path (see domain/Access.ts).
  .addError(Forbidden)
  .addError(NotFound)
  .middleware(Authentication) {}
