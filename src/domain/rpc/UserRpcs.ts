import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Principal } from "../Auth.js"
import { Conflict, Forbidden, InvalidInput, NotFound } from "../Errors.js"
import { ApiKeyId } from "../Ids.js"
import { ApiKeyInfo, CreateApiKey, CreatedApiKey, CreateUser, User } from "../User.js"
import { AuthMiddleware } from "./Middleware.js"

export class UserRpcs extends RpcGroup.make(
  Rpc.make("user.whoami", { success: Principal }),
  Rpc.make("user.create", { payload: CreateUser, success: User, error: Schema.Union(Forbidden, Conflict, InvalidInput) }),
  Rpc.make("user.list", { success: Schema.Array(User), error: Forbidden }),
  Rpc.make("key.create", { payload: CreateApiKey, success: CreatedApiKey, error: Schema.Union(Forbidden, NotFound) }),
  Rpc.make("key.list", { success: Schema.Array(ApiKeyInfo) }),
  Rpc.make("key.revoke", { payload: { id: ApiKeyId }, success: ApiKeyInfo, error: Schema.Union(NotFound, Forbidden) })
).middleware(AuthMiddleware) {}
