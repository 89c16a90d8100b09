import { Effect, Option, Schema } from "effect"
import { Scope } from "../domain/Auth.js"
import type { Role } from "../domain/Auth.js"
import type { ApiKeyId, ProjectId, UserId } from "../domain/Ids.js"
import { ApiKeyInfo, User } from "../domain/User.js"
import { outsideTransaction, RootDb } from "../storage/RootDb.js"

interface UserRow {
  readonly id: string
  readonly name: string
  readonly password_hash: string
  readonly is_admin: number
  readonly created_at: number
}
interface KeyRow {
  readonly id: string
  readonly user_id: string
  readonly name: string
  readonly prefix: string
  readonly scopes: string
  readonly kind: string
  /** JSON array of project ids, or NULL for every project. */
  readonly projects: string | null
  readonly created_at: number
  readonly last_used_at: number | null
  readonly revoked_at: number | null
}

const toUser = (r: UserRow) =>
  User.make({ id: r.id as UserId, name: r.name, isAdmin: r.is_admin === 1, createdAt: r.created_at })
const decodeScopes = Schema.decodeUnknownSync(Schema.parseJson(Schema.Array(Scope)))
const decodeProjects = (text: string) => JSON.parse(text) as ReadonlyArray<ProjectId>
const toKey = (r: KeyRow) =>
  ApiKeyInfo.make({
    id: r.id as ApiKeyId,
    userId: r.user_id as UserId,
    name: r.name,
    prefix: r.prefix,
    scopes: decodeScopes(r.scopes),
    ...(r.projects === null ? {} : { projects: decodeProjects(r.projects) }),
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at
  })

/** Root-database tables of users and API keys. SQL failures here are defects (local disk). */
export class UsersRepo extends Effect.Service<UsersRepo>()("kiris/UsersRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* RootDb
    const run = <A, E>(eff: Effect.Effect<A, E>) => outsideTransaction(eff).pipe(Effect.orDie)

    return {
      count: run(sql<{ n: number }>`SELECT count(*) AS n FROM users`).pipe(Effect.map((r) => r[0]?.n ?? 0)),
      insertUser: (u: { id: UserId; name: string; passwordHash: string; isAdmin: boolean; createdAt: number }) =>
        run(
          sql`INSERT INTO users (id, name, password_hash, is_admin, created_at)
              VALUES (${u.id}, ${u.name}, ${u.passwordHash}, ${u.isAdmin ? 1 : 0}, ${u.createdAt})`
        ).pipe(Effect.asVoid),
      list: run(sql<UserRow>`SELECT * FROM users ORDER BY created_at, name`).pipe(Effect.map((rows) => rows.map(toUser))),
      byName: (name: string) =>
        run(sql<UserRow>`SELECT * FROM users WHERE name = ${name}`).pipe(
          Effect.map((rows) => Option.fromNullable(rows[0]).pipe(Option.map((r) => ({ user: toUser(r), passwordHash: r.password_hash }))))
        ),
      byId: (id: string) =>
        run(sql<UserRow>`SELECT * FROM users WHERE id = ${id}`).pipe(Effect.map((rows) => Option.fromNullable(rows[0]).pipe(Option.map(toUser)))),
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
        run(
          sql<{ id: string; role: string | null }>`SELECT p.id AS id, m.role AS role FROM projects p
              LEFT JOIN members m ON m.project_id = p.id AND m.user_id = ${userId}
              WHERE p.id IN (SELECT value FROM json_each(${JSON.stringify(projectIds)}))`
        ).pipe(Effect.map((rows) => new Map(rows.map((r) => [r.id as ProjectId, r.role as Role | null])))),
      keyByHash: (hash: string) =>
        run(sql<KeyRow>`SELECT * FROM api_keys WHERE hash = ${hash}`).pipe(
          Effect.map((rows) => Option.fromNullable(rows[0]).pipe(Option.map((r) => ({ info: toKey(r), kind: r.kind }))))
        ),
      keyById: (id: string) =>
        run(sql<KeyRow>`SELECT * FROM api_keys WHERE id = ${id}`).pipe(Effect.map((rows) => Option.fromNullable(rows[0]).pipe(Option.map(toKey)))),
      listKeys: (userId: Option.Option<UserId>) =>
        run(
          Option.isSome(userId)
            ? sql<KeyRow>`SELECT * FROM api_keys WHERE user_id = ${userId.value} ORDER BY created_at`
            : sql<KeyRow>`SELECT * FROM api_keys ORDER BY created_at`
        ).pipe(Effect.map((rows) => rows.map(toKey))),
      revokeKey: (id: ApiKeyId, at: number) =>
        run(sql`UPDATE api_keys SET revoked_at = ${at} WHERE id = ${id} AND revoked_at IS NULL`).pipe(Effect.asVoid),
      /** Deletes the user; their keys and memberships go with them (foreign keys cascade). */
      deleteUser: (id: UserId) => run(sql`DELETE FROM users WHERE id = ${id}`).pipe(Effect.asVoid),
      adminCount: run(sql<{ n: number }>`SELECT count(*) AS n FROM users WHERE is_admin = 1`).pipe(Effect.map((r) => r[0]?.n ?? 0)),
      touchKey: (id: ApiKeyId, at: number) =>
        run(sql`UPDATE api_keys SET last_used_at = ${at} WHERE id = ${id}`).pipe(Effect.asVoid)
    } as const
  })
}) {}
