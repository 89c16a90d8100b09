import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Queue, Stream } from "effect"
import { type HubRpcClient, makeHubClient } from "../../src/client/HubClient.js"
import type { SubscriptionItem } from "../../src/domain/Event.js"
import type { ProjectId } from "../../src/domain/Ids.js"
import { request as rest } from "../support/Http.js"
import { startHub, type TestHub } from "../support/Hub.js"

/**
 * Open streams end the moment their caller loses access: removing the member, revoking the key or
 * deleting the user ends `events.subscribe` (with the refusal a new call would get), and nothing
 * published afterwards reaches them.
 */

const tcp = (hub: TestHub, token: string) => makeHubClient({ transport: "tcp", host: "127.0.0.1", port: hub.tcpPort }, token)

/** Subscribes in the background; returns once `Ready` arrived, with the items and the stream's fiber. */
const subscribe = (client: HubRpcClient, projectId: ProjectId) =>
  Effect.gen(function* () {
    const items = yield* Queue.unbounded<SubscriptionItem>()
    const ready = yield* Deferred.make<void>()
    const fiber = yield* client.events.subscribe({ projectId }).pipe(
      Stream.runForEach((item) =>
        Effect.zipRight(Queue.offer(items, item), item._tag === "Ready" ? Deferred.succeed(ready, undefined) : Effect.void)
      ),
      Effect.forkScoped
    )
    yield* Deferred.await(ready).pipe(Effect.timeout("10 seconds"), Effect.orDie)
    return { items, fiber }
  })

const endsWith = <E extends { readonly _tag: string }>(fiber: Fiber.Fiber<void, E>, tag: string) =>
  Effect.gen(function* () {
    const exit = yield* Fiber.await(fiber).pipe(Effect.timeout("10 seconds"), Effect.orDie)
    assert.isTrue(Exit.isFailure(exit), "the stream should have ended with a refusal")
    if (Exit.isFailure(exit)) {
      const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
      assert.strictEqual(error?._tag, tag, String(exit.cause))
    }
  })

const setup = Effect.gen(function* () {
  const hub = yield* startHub()
  const admin = yield* tcp(hub, hub.adminKey)
  const user = yield* admin.user.create({ name: "mallory", password: "mallory-password", isAdmin: false })
  const project = yield* admin.project.create({ name: "secret" })
  yield* admin.project.addMember({ projectId: project.id, user: user.id, role: "member" })
  const key = yield* admin.key.create({ name: "mallory", scopes: ["read", "write"], userId: user.id })
  return { hub, admin, user, project, key }
})

describe("open streams end when access ends", () => {
  it.scopedLive("removing the member ends their events.subscribe with NotFound, and later task payloads never reach it", () =>
    Effect.gen(function* () {
      const { admin, hub, key, project } = yield* setup
      const client = yield* tcp(hub, key.key)
      const { fiber, items } = yield* subscribe(client, project.id)
      yield* admin.project.removeMember({ projectId: project.id, user: "mallory" })
      yield* endsWith(fiber, "NotFound")
      yield* admin.task.enqueue({ projectId: project.id, kind: "chat", payload: { prompt: "the launch codes" } })
      const seen = JSON.stringify(yield* Queue.takeAll(items))
      assert.notInclude(seen, "the launch codes")
    })
  )

  it.scopedLive("demoting a member to viewer keeps their subscription open", () =>
    Effect.gen(function* () {
      const { admin, hub, key, project } = yield* setup
      const client = yield* tcp(hub, key.key)
      const { fiber, items } = yield* subscribe(client, project.id)
      yield* admin.project.addMember({ projectId: project.id, user: "mallory", role: "viewer" })
      yield* admin.task.enqueue({ projectId: project.id, kind: "chat", payload: { prompt: "still visible" } })
      for (;;) {
        const item = yield* Queue.take(items).pipe(Effect.timeout("10 seconds"), Effect.orDie)
        if (item._tag === "Event" && JSON.stringify(item.event).includes("still visible")) break
      }
      assert.isNull(fiber.unsafePoll())
    })
  )

  it.scopedLive("revoking the key ends the stream with Unauthorized", () =>
    Effect.gen(function* () {
      const { admin, hub, key, project } = yield* setup
      const client = yield* tcp(hub, key.key)
      const { fiber } = yield* subscribe(client, project.id)
      yield* admin.key.revoke({ id: key.info.id })
      yield* endsWith(fiber, "Unauthorized")
    })
  )

  it.scopedLive("deleting the user ends a login token's stream, and the token stops working", () =>
    Effect.gen(function* () {
      const { admin, hub, project } = yield* setup
      const login = yield* rest(hub, "POST", "/api/auth/login", { body: { name: "mallory", password: "mallory-password" } })
      const token = (login.json as { token: string }).token
      const client = yield* tcp(hub, token)
      const { fiber } = yield* subscribe(client, project.id)
      yield* admin.user.delete({ user: "mallory" })
      yield* endsWith(fiber, "Unauthorized")
      const after = yield* Effect.flip(client.project.list())
      assert.strictEqual(after._tag, "Unauthorized")
    })
  )

  it.scopedLive("revoking a worker key ends its worker.connect stream", () =>
    Effect.gen(function* () {
      const { admin, hub } = yield* setup
      const workerKey = yield* admin.key.create({ name: "w", scopes: ["worker"] })
      const worker = yield* tcp(hub, workerKey.key)
      const registered = yield* Deferred.make<void>()
      const fiber = yield* worker.worker.connect({ name: "w", kinds: ["chat"], capacity: 1 }).pipe(
        Stream.runForEach((push) => (push._tag === "Registered" ? Deferred.succeed(registered, undefined) : Effect.void)),
        Effect.forkScoped
      )
      yield* Deferred.await(registered).pipe(Effect.timeout("10 seconds"), Effect.orDie)
      yield* admin.key.revoke({ id: workerKey.info.id })
      yield* endsWith(fiber, "Unauthorized")
    })
  )
})
