import { Cache, Duration, Effect, Option, Redacted } from "effect"
import { hasScope, Principal, type Scope } from "../domain/Auth.js"
import { Forbidden, NotFound, Unauthorized } from "../domain/Errors.js"
import type { ApiKeyId, UserId } from "../domain/Ids.js"
import { ApiKeyInfo, CreatedApiKey } from "../domain/User.js"
import { newId, randomToken, sha256, verifyJwt } from "./Crypto.js"
import { JwtSecret } from "./JwtSecret.js"
import { UsersRepo } from "./UsersRepo.js"

export const KEY_PREFIX = "kiris_"

/**
 * API keys (`kiris_…`, stored as SHA-256, shown once) and the one place a bearer token becomes a
 * `Principal`: JWT access tokens and API keys alike. Lookups are cached for a few seconds so the
 * hot path (every RPC message) does not hit SQLite; revocation clears the cache at once.
 */
export class ApiKeys extends Effect.Service<ApiKeys>()("kiris/ApiKeys", {
  effect: Effect.gen(function* () {
    const repo = yield* UsersRepo
    const secret = Redacted.value(yield* JwtSecret)
    const touched = new Map<string, number>()

    const resolveKey = (token: string) =>
      Effect.gen(function* () {
        const found = yield* repo.keyByHash(sha256(token))
        if (Option.isNone(found)) return yield* new Unauthorized({ reason: "unknown API key" })
        const { info, kind } = found.value
        if (info.revokedAt !== null) return yield* new Unauthorized({ reason: "API key revoked" })
        const owner = yield* repo.byId(info.userId)
        if (Option.isNone(owner)) return yield* new Unauthorized({ reason: "API key owner no longer exists" })
        return Principal.make({
          kind: kind === "worker" ? "worker" : "apikey",
          userId: info.userId,
          name: kind === "worker" ? info.name : owner.value.name,
          isAdmin: owner.value.isAdmin && info.scopes.includes("admin"),
          scopes: info.scopes,
          keyId: info.id
        })
      })

    const keyCache = yield* Cache.make({ capacity: 10_000, timeToLive: Duration.seconds(10), lookup: resolveKey })

    /** Records last use at most once a minute per key, off the request path. */
    const touch = (p: Principal) => {
      const id = p.keyId
      if (id === undefined) return Effect.void
      const now = Date.now()
      if ((touched.get(id) ?? 0) > now - 60_000) return Effect.void
      touched.set(id, now)
      return Effect.forkDaemon(repo.touchKey(id, now))
    }

    const authenticate = (authorization: string | undefined): Effect.Effect<Principal, Unauthorized> => {
      const match = authorization?.match(/^Bearer\s+(\S+)\s*$/i)
      if (!match) return Effect.fail(new Unauthorized({ reason: authorization ? "malformed authorization header" : "missing bearer token" }))
      const token = match[1]!
      if (token.startsWith(KEY_PREFIX)) return keyCache.get(token).pipe(Effect.tap(touch))
      const claims = verifyJwt(secret, token, Math.floor(Date.now() / 1000))
      if (typeof claims === "string") return Effect.fail(new Unauthorized({ reason: claims }))
      return Effect.succeed(
        Principal.make({ kind: "user", userId: claims.sub as UserId, name: claims.name, isAdmin: claims.adm, scopes: [] })
      )
    }

    const mint = Effect.fn("ApiKeys.mint")(function* (userId: UserId, name: string, scopes: ReadonlyArray<Scope>, kind: "apikey" | "worker") {
      const key = `${KEY_PREFIX}${randomToken(32)}`
      const info = ApiKeyInfo.make({
        id: newId("key") as ApiKeyId,
        userId,
        name,
        prefix: key.slice(0, KEY_PREFIX.length + 6),
        scopes,
        createdAt: Date.now(),
        lastUsedAt: null,
        revokedAt: null
      })
      yield* repo.insertKey({ ...info, hash: sha256(key), kind })
      return CreatedApiKey.make({ key, info })
    })

    const create = Effect.fn("ApiKeys.create")(function* (
      caller: Principal,
      input: { readonly name: string; readonly scopes: ReadonlyArray<Scope>; readonly userId?: UserId | undefined }
    ) {
      if (caller.kind === "worker") return yield* new Forbidden({ reason: "worker keys cannot create keys" })
      const owner = input.userId ?? caller.userId
      if (owner !== caller.userId && !caller.isAdmin) return yield* new Forbidden({ reason: "only server admins create keys for other users" })
      if (Option.isNone(yield* repo.byId(owner))) return yield* new NotFound({ entity: "user", id: owner })
      const granted = caller.kind === "user" || caller.scopes.includes("admin") ? input.scopes : input.scopes.filter((s) => hasScope(caller, s))
      if (granted.length !== input.scopes.length) return yield* new Forbidden({ reason: "a key cannot grant scopes its creator lacks" })
      const isWorker = input.scopes.length === 1 && input.scopes[0] === "worker"
      return yield* mint(owner, input.name, input.scopes, isWorker ? "worker" : "apikey")
    })

    const list = (caller: Principal) => repo.listKeys(caller.isAdmin ? Option.none() : Option.some(caller.userId))

    const revoke = Effect.fn("ApiKeys.revoke")(function* (caller: Principal, id: ApiKeyId) {
      const key = yield* repo.keyById(id)
      if (Option.isNone(key) || (key.value.userId !== caller.userId && !caller.isAdmin)) {
        return yield* new NotFound({ entity: "api key", id })
      }
      yield* repo.revokeKey(id, Date.now())
      yield* keyCache.invalidateAll
      return (yield* repo.keyById(id)).pipe(Option.getOrThrow)
    })

    return { authenticate, create, list, revoke, mint } as const
  }),
  dependencies: [UsersRepo.Default]
}) {}
