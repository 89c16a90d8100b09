import { Effect, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ServerConfig } from "../config/ServerConfig.js"
import type { Principal } from "../domain/Auth.js"
import { Conflict, Forbidden, Unauthorized } from "../domain/Errors.js"
import type { UserId } from "../domain/Ids.js"
import { LoginResult, User, type CreateUser } from "../domain/User.js"
import { ApiKeys } from "./ApiKeys.js"
import { hashPassword, newId, randomToken, signJwt, verifyPassword } from "./Crypto.js"
import { JwtSecret } from "./JwtSecret.js"
import { UsersRepo } from "./UsersRepo.js"

/** Users: creation (server admins), password login issuing JWT access tokens, first-start bootstrap. */
export class Users extends Effect.Service<Users>()("kiris/Users", {
  effect: Effect.gen(function* () {
    const repo = yield* UsersRepo
    const keys = yield* ApiKeys
    const config = yield* ServerConfig
    const secret = Redacted.value(yield* JwtSecret)

    const insert = (input: { name: string; password: string; isAdmin: boolean }) =>
      Effect.gen(function* () {
        if (Option.isSome(yield* repo.byName(input.name))) return yield* new Conflict({ reason: `user ${input.name} already exists` })
        const user = User.make({ id: newId("usr") as UserId, name: input.name, isAdmin: input.isAdmin, createdAt: Date.now() })
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
      const found = yield* repo.byName(name)
      const ok = Option.isSome(found) && (yield* verifyPassword(password, found.value.passwordHash))
      if (!ok || Option.isNone(found)) return yield* new Unauthorized({ reason: "wrong user name or password" })
      const now = Math.floor(Date.now() / 1000)
      const exp = now + config.tokenTtlSeconds
      const user = found.value.user
      const token = signJwt(secret, { sub: user.id, name: user.name, adm: user.isAdmin, iat: now, exp })
      return LoginResult.make({ token, expiresAt: exp * 1000, user })
    })

    /**
     * On first start (no users): creates `admin` with a random password and an admin API key, writes
     * both to the data dir (mode 0600) and returns where; otherwise returns none.
     */
    const bootstrap = Effect.gen(function* () {
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

    return { create, list, login, bootstrap, byName: repo.byName } as const
  }),
  dependencies: [UsersRepo.Default, ApiKeys.Default]
}) {}
