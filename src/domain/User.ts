import { Schema } from "effect"
import { ApiKeyId, ProjectId, UserId } from "./Ids.js"
import { Scope } from "./Auth.js"

export class User extends Schema.Class<User>("User")({
  id: UserId,
  name: Schema.String,
  isAdmin: Schema.Boolean,
  createdAt: Schema.Number
}) {}

export class CreateUser extends Schema.Class<CreateUser>("CreateUser")({
  name: Schema.String.pipe(Schema.pattern(/^[a-zA-Z0-9_.@-]{1,64}$/)),
  password: Schema.String.pipe(Schema.minLength(8), Schema.maxLength(1024)),
  isAdmin: Schema.optionalWith(Schema.Boolean, { default: () => false })
}) {}

export class LoginResult extends Schema.Class<LoginResult>("LoginResult")({
  token: Schema.String,
  expiresAt: Schema.Number,
  user: User
}) {}

export class ApiKeyInfo extends Schema.Class<ApiKeyInfo>("ApiKeyInfo")({
  id: ApiKeyId,
  userId: UserId,
  name: Schema.String,
  prefix: Schema.String,
  scopes: Schema.Array(Scope),
  /** The projects the key is limited to; absent = every project its owner may use. */
  projects: Schema.optional(Schema.Array(ProjectId)),
  createdAt: Schema.Number,
  lastUsedAt: Schema.NullOr(Schema.Number),
  revokedAt: Schema.NullOr(Schema.Number)
}) {}

export class CreateApiKey extends Schema.Class<CreateApiKey>("CreateApiKey")({
  name: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128)),
  /** A key with the `worker` scope carries no other scope. */
  scopes: Schema.optionalWith(Schema.Array(Scope), { default: () => ["read", "write"] as const }),
  /** Create the key for another user (server admins only). Defaults to the caller. */
  userId: Schema.optional(UserId),
  /**
   * Limit the key to these projects, each one its owner is a member of. A worker key then serves only
   * those of them where its owner may run work. Default: every project its owner may use.
   */
  projects: Schema.optional(Schema.Array(ProjectId))
}) {}

/** Returned once, at creation: the only time the secret is visible. */
export class CreatedApiKey extends Schema.Class<CreatedApiKey>("CreatedApiKey")({
  key: Schema.String,
  info: ApiKeyInfo
}) {}
