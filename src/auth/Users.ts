import { Clock, Effect, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Cluster } from "../cluster/Cluster.js"
import { ServerConfig } from "../config/ServerConfig.js"
import type { Principal } from "../domain/Auth.js"
import { Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests, Unauthorized } from "../domain/Errors.js"
import type { UserId } from "../domain/Ids.js"
import { LoginResult, User, type CreateUser } from "../domain/User.js"
import { RootDb } from "../storage/RootDb.js"
import { Metrics } from "../transport/metrics/Metrics.js"
import { ApiKeys } from "./ApiKeys.js"
import { hashPassword, newId, randomToken, signJwt, verifyPassword } from "./Crypto.js"
import { JwtSecret } from "./JwtSecret.js"
import { Revocations } from "./Revocations.js"
import { UsersRepo } from "./UsersRepo.js"

export interface LoginThrottleOptions {
  /** Attempts per user name that may fail within `windowMs` before the name cools down. */
  readonly maxFailures: number
  readonly windowMs: number
  readonly cooldownMs: number
  /** Most user names tracked at once; beyond it the oldest entry is forgotten. */
  readonly maxTracked: number
}

export const loginThrottleDefaults: LoginThrottleOptions = {
  maxFailures: 5,
  windowMs: 15 * 60_000,
  cooldownMs: 5 * 60_000,
  maxTracked: 10_000
}

interface Attempts {
  count: number
  windowStart: number
  blockedUntil: number
}

/**
 * Failed-login bookkeeping per user name, in memory and bounded. `begin` counts an attempt before
 * the password is checked (so concurrent guesses count too) and refuses it, with the seconds left,
 * while the name cools down; the attempt that reaches `maxFailures` starts the cooling period.
 * `succeeded` forgets the name. Times are passed in, so the rules are testable without waiting.
 */
export const makeLoginThrottle = (options: LoginThrottleOptions = loginThrottleDefaults) => {
  const entries = new Map<string, Attempts>()

  const expired = (a: Attempts, now: number) => (a.blockedUntil > 0 ? a.blockedUntil <= now : a.windowStart + options.windowMs <= now)

  /** Makes room for one more name: drops finished entries, then (if still full) the oldest one. */
  const makeRoom = (now: number) => {
    if (entries.size < options.maxTracked) return
    for (const [name, a] of entries) if (expired(a, now)) entries.delete(name)
    while (entries.size >= options.maxTracked) {
      const oldest = entries.keys().next()
      if (oldest.done === true) break
      entries.delete(oldest.value)
    }
  }

  /** Undefined when the attempt may go ahead; otherwise the seconds until the name may try again. */
  const begin = (name: string, now: number): number | undefined => {
    let a = entries.get(name)
    if (a !== undefined && a.blockedUntil > now) return Math.max(1, Math.ceil((a.blockedUntil - now) / 1000))
    if (a !== undefined && expired(a, now)) {
      entries.delete(name)
      a = undefined
    }
    if (a === undefined) {
      makeRoom(now)
      a = { count: 0, windowStart: now, blockedUntil: 0 }
      entries.set(name, a)
    }
    a.count++
    if (a.count >= options.maxFailures) a.blockedUntil = now + options.cooldownMs
    return undefined
  }

  const succeeded = (name: string) => void entries.delete(name)

  return { begin, succeeded, size: () => entries.size } as const
}

/** Users: creation (server admins), password login issuing JWT access tokens, first-start bootstrap. */
export class Users extends Effect.Service<Users>()("kiris/Users", {
  effect: Effect.gen(function* () {
    const repo = yield* UsersRepo
    const revocations = yield* Revocations
    const keys = yield* ApiKeys
    const config = yield* ServerConfig
    const secret = Redacted.value(yield* JwtSecret)
    const metrics = yield* Metrics
    const root = yield* RootDb
    const cluster = yield* Cluster
    const throttle = makeLoginThrottle()
    /**
     * A hash no password matches, made on the first login. An unknown user name is checked against
     * it, so it costs the same scrypt work as a wrong password and answers alike.
     */
    const dummyHash = yield* Effect.cached(hashPassword(randomToken(18)))

    const insert = (input: { name: string; password: string; isAdmin: boolean }) =>
      Effect.gen(function* () {
        if (Option.isSome(yield* repo.byName(input.name))) return yield* new Conflict({ reason: `user ${input.name} already exists` })
        const user = User.make({ id: newId("usr") as UserId, name: input.name, isAdmin: input.isAdmin, createdAt: yield* Clock.currentTimeMillis })
        yield* repo.insertUser({ ...user, passwordHash: yield* hashPassword(input.password) })
        return user
      })

    const create = Effect.fn("Users.create")(function* (caller: Principal, input: CreateUser) {
      if (!caller.isAdmin) return yield* new Forbidden({ reason: "only server admins create users" })
      return yield* insert(input)
    })

    const list = Effect.fn("Users.list")(function* (caller: Principal) {
      if (!caller.isAdmin) return yield* new Forbidden({ reason: "only server admins list users" })
      return yield* repo.list
    })

    const login = Effect.fn("Users.login")(function* (name: string, password: string) {
      const retryAfterSeconds = throttle.begin(name, yield* Clock.currentTimeMillis)
      if (retryAfterSeconds !== undefined) {
        metrics.inc("kiris_login_throttled_total")
        return yield* new TooManyRequests({ reason: "too many failed logins for this user name; try again later", retryAfterSeconds })
      }
      const dummy = yield* dummyHash
      const found = yield* repo.byName(name)
      const ok = yield* verifyPassword(password, Option.isSome(found) ? found.value.passwordHash : dummy)
      if (!ok || Option.isNone(found)) return yield* new Unauthorized({ reason: "wrong user name or password" })
      throttle.succeeded(name)
      const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
      const exp = now + config.tokenTtlSeconds
      const user = found.value.user
      const token = signJwt(secret, { sub: user.id, name: user.name, adm: user.isAdmin, iat: now, exp })
      return LoginResult.make({ token, expiresAt: exp * 1000, user })
    })

    /**
     * Runs `effect` while no other hub of the database runs it (PostgreSQL: a transaction holding an
     * advisory lock, released at its end; the statements inside run on connections of their own).
     */
    const alone = <A>(effect: Effect.Effect<A>): Effect.Effect<A> =>
      cluster.backend === "pg"
        ? root.withTransaction(Effect.zipRight(root`SELECT pg_advisory_xact_lock(hashtext('kiris.bootstrap'))`, effect)).pipe(Effect.orDie)
        : effect

    /**
     * On first start (no users): creates `admin` with a random password and an admin API key, writes
     * both to the data dir (mode 0600) and returns where; otherwise returns none. Of hubs starting
     * together on one database, exactly one does it; the others find the admin it made.
     */
    const bootstrap = alone(
      Effect.gen(function* () {
        if ((yield* repo.count) > 0) return Option.none<{ keyFile: string; passwordFile: string }>()
        const password = randomToken(18)
        const admin = yield* insert({ name: "admin", password, isAdmin: true }).pipe(Effect.orDie)
        const created = yield* keys.mint(admin.id, "admin (bootstrap)", ["admin"], "apikey")
        const keyFile = path.join(config.dataDir, "admin.key")
        const passwordFile = path.join(config.dataDir, "admin.password")
        yield* Effect.sync(() => {
          fs.writeFileSync(keyFile, created.key + "\n", { mode: 0o600 })
          fs.writeFileSync(passwordFile, password + "\n", { mode: 0o600 })
        })
        return Option.some({ keyFile, passwordFile })
      })
    )

    /** Deletes a user (by name or id) with their keys and memberships; their open streams end at once. */
    const remove = Effect.fn("Users.remove")(function* (caller: Principal, nameOrId: string) {
      const byName = yield* repo.byName(nameOrId)
      const user = Option.isSome(byName) ? Option.some(byName.value.user) : yield* repo.byId(nameOrId)
      if (Option.isNone(user)) return yield* new NotFound({ entity: "user", id: nameOrId })
      if (user.value.id === caller.userId) return yield* new InvalidInput({ reason: "you cannot delete yourself" })
      if (user.value.isAdmin && (yield* repo.adminCount) <= 1) return yield* new InvalidInput({ reason: "the hub keeps at least one server admin" })
      yield* repo.deleteUser(user.value.id)
      yield* revocations.publish({ _tag: "User", userId: user.value.id })
    })

    return { create, list, login, bootstrap, remove, byName: repo.byName } as const
  }),
  dependencies: [UsersRepo.Default, ApiKeys.Default, Revocations.Default]
}) {}
