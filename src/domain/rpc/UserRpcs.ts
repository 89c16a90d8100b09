import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { Principal } from "../Auth.js"
import { Conflict, Forbidden, InvalidInput, NotFound } from "../Errors.js"
import { ApiKeyId } from "../Ids.js"
import { ApiKeyInfo, CreateApiKey, CreatedApiKey, CreateUser, User } from "../User.js"
import { AuthMiddleware } from "./Middleware.js"

export class UserRpcs extends RpcGroup.make(
  Rpc.make("user.whoami", { success: Principal }).annotate(Requires, Access.self),
  Rpc.make("user.create", { payload: CreateUser, success: User, error: Schema.Union(Forbidden, Conflict, InvalidInput) }).annotate(
    Requires,
    Access.serverAdmin("write")
  ),
  Rpc.make("user.list", { success: Schema.Array(User), error: Forbidden }).annotate(Requires, Access.serverAdmin("read")),
  Rpc.make("key.create", { payload: CreateApiKey, success: CreatedApiKey, error: Schema.Union(Forbidden, NotFound, InvalidInput) }).annotate(
    Requires,
    Access.authenticated("write")
  ),
  Rpc.make("key.list", { success: Schema.Array(ApiKeyInfo) }).annotate(Requires, Access.authenticated("read")),
  Rpc.make("key.revoke", { payload: { id: ApiKeyId }, success: ApiKeyInfo, error: Schema.Union(NotFound, Forbidden) }).annotate(
    Requires,
    Access.authenticated("write")
  ),
  /** Deletes a user with their keys and memberships; their open streams end at once. */
  Rpc.make("user.delete", {
    payload: { user: Schema.String },
    success: Schema.Void,
    error: Schema.Union(NotFound, Forbidden, InvalidInput)
  }).annotate(Requires, Access.serverAdmin("write"))
).middleware(AuthMiddleware) {}
