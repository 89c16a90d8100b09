import { Schema } from "effect"
import { ApiKeyId, ProjectId, UserId } from "./Ids.js"

/** Project roles, weakest first. */
export const Role = Schema.Literal("viewer", "member", "admin", "owner")
export type Role = typeof Role.Type

const roleRank: Record<Role, number> = { viewer: 0, member: 1, admin: 2, owner: 3 }
export const roleAtLeast = (role: Role, min: Role): boolean => roleRank[role] >= roleRank[min]

/**
 * API key scopes. `admin` acts as the key's user with no restriction; `read` and `write` limit a
 * key to reading or also changing data; `execute` lets it enqueue shell/python work; `worker`
 * lets a swarm worker lease and complete tasks.
 */
export const Scope = Schema.Literal("admin", "read", "write", "execute", "worker")
export type Scope = typeof Scope.Type

/** Who is calling: a user (by password login or API key) or a swarm worker key. */
export class Principal extends Schema.Class<Principal>("Principal")({
  kind: Schema.Literal("user", "apikey", "worker"),
  userId: UserId,
  name: Schema.String,
  isAdmin: Schema.Boolean,
  scopes: Schema.Array(Scope),
  keyId: Schema.optional(ApiKeyId),
  /** The projects an API or worker key is limited to; absent = every project its owner may use. */
  projects: Schema.optional(Schema.Array(ProjectId))
}) {}

export const hasScope = (p: Principal, scope: Scope): boolean => p.kind === "user" || p.scopes.includes("admin") || p.scopes.includes(scope)
