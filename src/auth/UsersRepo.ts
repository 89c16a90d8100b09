import { SqlSchema } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { Role, Scope } from "../domain/Auth.js"
import { ApiKeyId, ProjectId, UserId } from "../domain/Ids.js"
import { ApiKeyInfo, User } from "../domain/User.js"
import { outsideTransaction, RootDb } from "../storage/RootDb.js"
import { CountRow, decodedOrDie, Flag, Int, NullableInt } from "../storage/Rows.js"

const UserRow = Schema.Struct({
  id: UserId,
  name: Schema.String,
  password_hash: Schema.String,
  is_admin: Flag,
  created_at: Int
})
const KeyRow = Schema.Struct({
  id: ApiKeyId,
  user_id: UserId,
  name: Schema.String,
  prefix: Schema.String,
  scopes: Schema.parseJson(Schema.Array(Scope)),
  kind: Schema.String,
  /** JSON array of project ids, or NULL for every project. */
  projects: Schema.NullOr(Schema.parseJson(Schema.Array(ProjectId))),
  created_at: Int,
  last_used_at: NullableInt,
  revoked_at: NullableInt
})
const RoleRow = Schema.Struct({ id: ProjectId, role: Schema.NullOr(Role) })

const toUser = (r: typeof UserRow.Type) => User.make({ id: r.id, name: r.name, isAdmin: r.is_admin, createdAt: r.created_at })
const toKey = (r: typeof KeyRow.Type) =>
  ApiKeyInfo.make({
    id: r.id,
    userId: r.user_id,
    name: r.name,
    prefix: r.prefix,
    scopes: r.scopes,
    ...(r.projects === null ? {} : { projects: r.projects }),
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at
  })

/** Root-database tables of users and API keys. SQL failures here are defects (local disk). */
export class UsersRepo extends Effect.Service<UsersRepo>()("kiris/UsersRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* RootDb
    const run = <A, E>(eff: Effect.Effect<A, E>) => outsideTransaction(eff).pipe(Effect.orDie)

    const count = SqlSchema.single({ Request: Schema.Void, Result: CountRow, execute: () => sql`SELECT count(*) AS n FROM users` })
    const adminCount = SqlSchema.single({
      Request: Schema.Void,
      Result: CountRow,
      execute: () => sql`SELECT count(*) AS n FROM users WHERE is_admin = 1`
    })
    const list = SqlSchema.findAll({ Request: Schema.Void, Result: UserRow, execute: () => sql`SELECT * FROM users ORDER BY created_at, name` })
    const byName = SqlSchema.findOne({ Request: Schema.String, Result: UserRow, execute: (name) => sql`SELECT * FROM users WHERE name = ${name}` })
    const byId = SqlSchema.findOne({ Request: Schema.String, Result: UserRow, execute: (id) => sql`SELECT * FROM users WHERE id = ${id}` })
    const rolesIn = SqlSchema.findAll({
      Request: Schema.Struct({ userId: UserId, projectIds: Schema.Array(ProjectId) }),
      Result: RoleRow,
      execute: (r) =>
        r.projectIds.length === 0
          ? Effect.succeed([])
          : sql`SELECT p.id AS id, m.role AS role FROM projects p
              LEFT JOIN members m ON m.project_id = p.id AND m.user_id = ${r.userId}
              WHERE ${sql.in("p.id", r.projectIds)}`
    })
    const keyByHash = SqlSchema.findOne({
      Request: Schema.String,
      Result: KeyRow,
      execute: (hash) => sql`SELECT * FROM api_keys WHERE hash = ${hash}`
    })
    const keyById = SqlSchema.findOne({ Request: Schema.String, Result: KeyRow, execute: (id) => sql`SELECT * FROM api_keys WHERE id = ${id}` })
    const listKeys = SqlSchema.findAll({
      Request: Schema.Option(UserId),
      Result: KeyRow,
      execute: (userId) =>
        userId._tag === "Some"
          ? sql`SELECT * FROM api_keys WHERE user_id = ${userId.value} ORDER BY created_at`
          : sql`SELECT * FROM api_keys ORDER BY created_at`
    })

    return {
      count: outsideTransaction(
        count(undefined).pipe(
          decodedOrDie("users count"),
          Effect.map((r) => r.n)
        )
      ),
      insertUser: (u: { id: UserId; name: string; passwordHash: string; isAdmin: boolean; createdAt: number }) =>
        run(
          sql`INSERT INTO users (id, name, password_hash, is_admin, created_at)
              VALUES (${u.id}, ${u.name}, ${u.passwordHash}, ${u.isAdmin ? 1 : 0}, ${u.createdAt})`
        ).pipe(Effect.asVoid),
      list: outsideTransaction(
        list(undefined).pipe(
          decodedOrDie("users"),
          Effect.map((rows) => rows.map(toUser))
        )
      ),
      byName: (name: string) =>
        outsideTransaction(byName(name)).pipe(
          decodedOrDie("users by name"),
          Effect.map(Option.map((r) => ({ user: toUser(r), passwordHash: r.password_hash })))
        ),
      byId: (id: string) => outsideTransaction(byId(id)).pipe(decodedOrDie("users by id"), Effect.map(Option.map(toUser))),
      insertKey: (k: {
        id: ApiKeyId
        userId: UserId
        name: string
        prefix: string
        hash: string
        scopes: ReadonlyArray<Scope>
        projects?: ReadonlyArray<ProjectId> | undefined
        kind: string
        createdAt: number
      }) =>
        run(
          sql`INSERT INTO api_keys (id, user_id, name, prefix, hash, scopes, projects, kind, created_at)
              VALUES (${k.id}, ${k.userId}, ${k.name}, ${k.prefix}, ${k.hash}, ${JSON.stringify(k.scopes)},
                      ${k.projects === undefined ? null : JSON.stringify(k.projects)}, ${k.kind}, ${k.createdAt})`
        ).pipe(Effect.asVoid),
      /** For each of `projectIds` that exists: the user's role in it, or null when not a member. */
      rolesIn: (userId: UserId, projectIds: ReadonlyArray<ProjectId>) =>
        outsideTransaction(rolesIn({ userId, projectIds })).pipe(
          decodedOrDie("members roles of a user"),
          Effect.map((rows) => new Map(rows.map((r) => [r.id, r.role] as const)))
        ),
      keyByHash: (hash: string) =>
        outsideTransaction(keyByHash(hash)).pipe(decodedOrDie("api_keys by hash"), Effect.map(Option.map((r) => ({ info: toKey(r), kind: r.kind })))),
      keyById: (id: string) => outsideTransaction(keyById(id)).pipe(decodedOrDie("api_keys by id"), Effect.map(Option.map(toKey))),
      listKeys: (userId: Option.Option<UserId>) =>
        outsideTransaction(listKeys(userId)).pipe(
          decodedOrDie("api_keys"),
          Effect.map((rows) => rows.map(toKey))
        ),
      revokeKey: (id: ApiKeyId, at: number) =>
        run(sql`UPDATE api_keys SET revoked_at = ${at} WHERE id = ${id} AND revoked_at IS NULL`).pipe(Effect.asVoid),
      /** Deletes the user; their keys and memberships go with them (foreign keys cascade). */
      deleteUser: (id: UserId) => run(sql`DELETE FROM users WHERE id = ${id}`).pipe(Effect.asVoid),
      adminCount: outsideTransaction(
        adminCount(undefined).pipe(
          decodedOrDie("admin users count"),
          Effect.map((r) => r.n)
        )
      ),
      touchKey: (id: ApiKeyId, at: number) => run(sql`UPDATE api_keys SET last_used_at = ${at} WHERE id = ${id}`).pipe(Effect.asVoid)
    } as const
  })
}) {}
