import { Cache, Clock, Duration, Effect, Option, Redacted } from "effect"
import { hasScope, Principal, type Scope } from "../domain/Auth.js"
import { Forbidden, InvalidInput, NotFound, Unauthorized } from "../domain/Errors.js"
import type { ApiKeyId, ProjectId, UserId } from "../domain/Ids.js"
import { ApiKeyInfo, CreatedApiKey } from "../domain/User.js"
import { newId, randomToken, sha256, verifyJwt } from "./Crypto.js"
import { JwtSecret } from "./JwtSecret.js"
import { Revocations } from "./Revocations.js"
import { UsersRepo } from "./UsersRepo.js"

export const KEY_PREFIX = "kiris_"

/** A key's last use is recorded at most this often. */
const TOUCH_EVERY_MS = 60_000

/** The one answer to a key that does not authenticate: unknown, revoked or ownerless keys look alike. */
const invalidKey = "unknown API key"

/**
 * API keys (`kiris_…`, stored as SHA-256, shown once) and the one place a bearer token becomes a
 * `Principal`: JWT access tokens and API keys alike. Lookups are cached for a few seconds so the
 * hot path (every RPC message) does not hit the database; a revocation (from any hub) clears the
 * cache at once.
 */
export class ApiKeys extends Effect.Service<ApiKeys>()("kiris/ApiKeys", {
  scoped: Effect.gen(function* () {
    const repo = yield* UsersRepo
    const revocations = yield* Revocations
    const secret = Redacted.value(yield* JwtSecret)
    /** When each key's last use was recorded; only entries of the last minute are kept. */
    const touched = new Map<string, number>()
    let sweptAt = 0

    const resolveKey = (token: string) =>
      Effect.gen(function* () {
        const found = yield* repo.keyByHash(sha256(token))
        if (Option.isNone(found)) return yield* new Unauthorized({ reason: invalidKey })
        const { info, kind } = found.value
        if (info.revokedAt !== null) return yield* new Unauthorized({ reason: invalidKey })
        const owner = yield* repo.byId(info.userId)
        if (Option.isNone(owner)) return yield* new Unauthorized({ reason: invalidKey })
        return Principal.make({
          kind: kind === "worker" ? "worker" : "apikey",
          userId: info.userId,
          name: kind === "worker" ? info.name : owner.value.name,
          isAdmin: owner.value.isAdmin && info.scopes.includes("admin"),
          scopes: info.scopes,
          keyId: info.id,
          ...(info.projects === undefined ? {} : { projects: info.projects })
        })
      })

    const keyCache = yield* Cache.make({ capacity: 10_000, timeToLive: Duration.seconds(10), lookup: resolveKey })
    // A key revoked or a user deleted, on this hub or another: no cached answer outlives it.
    yield* revocations.invalidate((r) => (r._tag === "Member" ? Effect.void : keyCache.invalidateAll))

    /**
     * Records last use at most once a minute per key, off the request path. Entries older than the
     * minute say nothing and are swept (at most once a minute), so the map holds only recent keys.
     */
    const touch = (p: Principal) => {
      const id = p.keyId
      if (id === undefined) return Effect.void
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const since = now - TOUCH_EVERY_MS
        if (sweptAt <= since) {
          sweptAt = now
          for (const [key, at] of touched) if (at <= since) touched.delete(key)
        }
        if ((touched.get(id) ?? 0) > since) return Effect.void
        touched.set(id, now)
        return Effect.asVoid(Effect.forkDaemon(repo.touchKey(id, now)))
      })
    }

    const authenticate = (authorization: string | undefined): Effect.Effect<Principal, Unauthorized> => {
      const match = authorization?.match(/^Bearer\s+(\S+)\s*$/i)
      if (!match) return Effect.fail(new Unauthorized({ reason: authorization ? "malformed authorization header" : "missing bearer token" }))
      const token = match[1]!
      if (token.startsWith(KEY_PREFIX)) return keyCache.get(token).pipe(Effect.tap(touch))
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const claims = verifyJwt(secret, token, Math.floor(now / 1000))
        if (typeof claims === "string") return Effect.fail(new Unauthorized({ reason: claims }))
        return Effect.succeed(Principal.make({ kind: "user", userId: claims.sub as UserId, name: claims.name, isAdmin: claims.adm, scopes: [] }))
      })
    }

    /**
     * Stores a new key. A `worker` key carries exactly the `worker` scope and an `apikey` never
     * does (callers validate input first; a mismatch here is a defect). `projects` limits the key.
     */
    const mint = Effect.fn("ApiKeys.mint")(function* (
      userId: UserId,
      name: string,
      scopes: ReadonlyArray<Scope>,
      kind: "apikey" | "worker",
      projects?: ReadonlyArray<ProjectId>
    ) {
      const workerOnly = scopes.length > 0 && scopes.every((s) => s === "worker")
      if (kind === "worker" ? !workerOnly : scopes.includes("worker")) {
        return yield* Effect.dieMessage(`a ${kind} key cannot have the scopes ${scopes.join(",")}`)
      }
      const key = `${KEY_PREFIX}${randomToken(32)}`
      const info = ApiKeyInfo.make({
        id: newId("key") as ApiKeyId,
        userId,
        name,
        prefix: key.slice(0, KEY_PREFIX.length + 6),
        scopes: [...new Set(scopes)],
        ...(projects === undefined ? {} : { projects }),
        createdAt: yield* Clock.currentTimeMillis,
        lastUsedAt: null,
        revokedAt: null
      })
      yield* repo.insertKey({ ...info, hash: sha256(key), kind })
      return CreatedApiKey.make({ key, info })
    })

    /** Checks a key's project list: each project exists and its owner is a member (server admins: any). */
    const checkProjects = Effect.fn("ApiKeys.checkProjects")(function* (
      caller: Principal,
      ownerIsAdmin: boolean,
      owner: UserId,
      projects: ReadonlyArray<ProjectId>
    ) {
      if (projects.length === 0) return yield* new InvalidInput({ reason: "name at least one project, or none for every project" })
      if (projects.length > 1000) return yield* new InvalidInput({ reason: "a key names at most 1000 projects" })
      const roles = yield* repo.rolesIn(owner, projects)
      for (const id of projects) {
        const role = roles.get(id)
        // unknown projects and projects the owner is not in look alike
        if (role === undefined || (role === null && !ownerIsAdmin)) return yield* new NotFound({ entity: "project", id })
      }
      if (caller.projects !== undefined) {
        const allowed = caller.projects
        const beyond = projects.find((id) => !allowed.includes(id))
        if (beyond !== undefined)
          return yield* new Forbidden({ reason: `a key cannot reach projects its creator's key is not limited to (${beyond})` })
      }
    })

    const create = Effect.fn("ApiKeys.create")(function* (
      caller: Principal,
      input: {
        readonly name: string
        readonly scopes: ReadonlyArray<Scope>
        readonly userId?: UserId | undefined
        readonly projects?: ReadonlyArray<ProjectId> | undefined
      }
    ) {
      if (caller.kind === "worker") return yield* new Forbidden({ reason: "worker keys cannot create keys" })
      const scopes = [...new Set(input.scopes)]
      if (scopes.length === 0) return yield* new InvalidInput({ reason: "a key needs at least one scope" })
      const isWorker = scopes.includes("worker")
      if (isWorker && scopes.length > 1) {
        return yield* new InvalidInput({
          reason: `a worker key carries only the worker scope (asked for ${scopes.join(", ")}): create it with the worker scope alone`
        })
      }
      const ownerId = input.userId ?? caller.userId
      if (ownerId !== caller.userId && !caller.isAdmin) return yield* new Forbidden({ reason: "only server admins create keys for other users" })
      const owner = yield* repo.byId(ownerId)
      if (Option.isNone(owner)) return yield* new NotFound({ entity: "user", id: ownerId })
      const granted = caller.kind === "user" || caller.scopes.includes("admin") ? scopes : scopes.filter((s) => hasScope(caller, s))
      if (granted.length !== scopes.length) return yield* new Forbidden({ reason: "a key cannot grant scopes its creator lacks" })
      const projects = input.projects === undefined ? caller.projects : [...new Set(input.projects)]
      if (projects !== undefined) yield* checkProjects(caller, owner.value.isAdmin, ownerId, projects)
      return yield* mint(ownerId, input.name, scopes, isWorker ? "worker" : "apikey", projects)
    })

    const list = (caller: Principal) => repo.listKeys(caller.isAdmin ? Option.none() : Option.some(caller.userId))

    const revoke = Effect.fn("ApiKeys.revoke")(function* (caller: Principal, id: ApiKeyId) {
      const key = yield* repo.keyById(id)
      if (Option.isNone(key) || (key.value.userId !== caller.userId && !caller.isAdmin)) {
        return yield* new NotFound({ entity: "api key", id })
      }
      yield* repo.revokeKey(id, yield* Clock.currentTimeMillis)
      yield* revocations.publish({ _tag: "Key", keyId: id })
      return (yield* repo.keyById(id)).pipe(Option.getOrThrow)
    })

    /** Keys whose last use is remembered (those used in about the last minute). */
    const touchedSize = Effect.sync(() => touched.size)

    return { authenticate, create, list, revoke, mint, touchedSize } as const
  }),
  dependencies: [UsersRepo.Default, Revocations.Default]
}) {}
