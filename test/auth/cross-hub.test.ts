import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Redacted, Stream } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { HubRpcClient } from "../../src/client/HubClient.js"
import type { ProjectId } from "../../src/domain/Ids.js"
import { request as rest } from "../support/Http.js"
import { startHubWithIdleModel, tempDir, type TestHub } from "../support/Hub.js"
import { backends, freshDatabase } from "../support/Pg.js"

/**
 * Hubs sharing one PostgreSQL database and data dir: they start together safely (one admin, one
 * JWT secret), and a revocation made through one hub takes effect on every other at once: open
 * streams there end, and cached credentials are refused on the next call.
 */

/** Two whole hubs on one fresh database and one data dir, built at the same time. */
const twoHubs = Effect.gen(function* () {
  const databaseUrl = yield* freshDatabase
  const dataDir = tempDir()
  const options = { dataDir, databaseUrl: Option.some(Redacted.make(databaseUrl)) }
  const [a, b] = yield* Effect.all([startHubWithIdleModel(options), startHubWithIdleModel(options)], { concurrency: 2 })
  return { a, b, dataDir }
})

/** Subscribes in the background; returns the stream's fiber once `Ready` arrived. */
const subscribe = (client: HubRpcClient, projectId: ProjectId) =>
  Effect.gen(function* () {
    const ready = yield* Deferred.make<void>()
    const fiber = yield* client.events.subscribe({ projectId }).pipe(
      Stream.runForEach((item) => (item._tag === "Ready" ? Deferred.succeed(ready, undefined) : Effect.void)),
      Effect.forkScoped
    )
    yield* Deferred.await(ready).pipe(Effect.timeout("10 seconds"), Effect.orDie)
    return fiber
  })

/** The stream ended (well before any cache's time to live) with the refusal `tag`. */
const endsWith = <E extends { readonly _tag: string }>(fiber: Fiber.Fiber<void, E>, tag: string) =>
  Effect.gen(function* () {
    const exit = yield* Fiber.await(fiber).pipe(Effect.timeout("5 seconds"), Effect.orDie)
    assert.isTrue(Exit.isFailure(exit), "the stream should have ended with a refusal")
    if (Exit.isFailure(exit)) {
      const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
      assert.strictEqual(error?._tag, tag, String(exit.cause))
    }
  })

/** A user who is a member of a project, with a key, set up through hub `a`. */
const member = (a: TestHub) =>
  Effect.gen(function* () {
    const admin = yield* a.tcpClient()
    const user = yield* admin.user.create({ name: "mallory", password: "mallory-password", isAdmin: false })
    const project = yield* admin.project.create({ name: "secret", description: "" })
    yield* admin.project.addMember({ projectId: project.id, user: user.id, role: "member" })
    const key = yield* admin.key.create({ name: "mallory", scopes: ["read", "write"], userId: user.id })
    return { admin, user, project, key }
  })

describe.skipIf(!backends.includes("pg"))("auth across hubs sharing PostgreSQL", () => {
  it.scopedLive("two hubs starting together on a fresh database make one admin and one JWT secret, usable on both", () =>
    Effect.gen(function* () {
      const { a, b, dataDir } = yield* twoHubs
      assert.strictEqual(a.adminKey, b.adminKey)
      const onA = yield* a.tcpClient()
      const onB = yield* b.tcpClient()
      const users = yield* onB.user.list()
      assert.deepStrictEqual(
        users.map((u) => u.name),
        ["admin"]
      )
      const keys = yield* onA.key.list()
      assert.strictEqual(keys.filter((k) => k.name === "admin (bootstrap)").length, 1)
      // The password written next to the key is the admin's, and a token issued by one hub works on the other.
      const password = fs.readFileSync(path.join(dataDir, "admin.password"), "utf8").trim()
      const login = yield* rest(a, "POST", "/api/auth/login", { body: { name: "admin", password } })
      assert.strictEqual(login.status, 200)
      const token = (login.json as { token: string }).token
      const viaToken = yield* b.tcpClient(token)
      const me = yield* viaToken.user.whoami()
      assert.strictEqual(me.name, "admin")
    })
  )

  it.scopedLive("a key revoked through one hub ends its open stream on the other and is refused there at once", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoHubs
      const { admin, key, project } = yield* member(a)
      const onB = yield* b.tcpClient(key.key)
      // B has the key cached now; its cache lives longer than this test waits.
      yield* onB.project.list()
      const fiber = yield* subscribe(onB, project.id)
      yield* admin.key.revoke({ id: key.info.id })
      yield* endsWith(fiber, "Unauthorized")
      const refused = yield* Effect.flip(onB.project.list())
      assert.strictEqual(refused._tag, "Unauthorized")
    })
  )

  it.scopedLive("a member removed or a user deleted through one hub loses access on the other at once", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoHubs
      const { admin, project } = yield* member(a)
      const login = yield* rest(b, "POST", "/api/auth/login", { body: { name: "mallory", password: "mallory-password" } })
      const token = (login.json as { token: string }).token
      const onB = yield* b.tcpClient(token)
      yield* onB.project.list()

      const first = yield* subscribe(onB, project.id)
      yield* admin.project.removeMember({ projectId: project.id, user: "mallory" })
      yield* endsWith(first, "NotFound")

      yield* admin.project.addMember({ projectId: project.id, user: "mallory", role: "member" })
      const second = yield* subscribe(onB, project.id)
      yield* admin.user.delete({ user: "mallory" })
      yield* endsWith(second, "Unauthorized")
      const refused = yield* Effect.flip(onB.project.list())
      assert.strictEqual(refused._tag, "Unauthorized")
    })
  )
})
