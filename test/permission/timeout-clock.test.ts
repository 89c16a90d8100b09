import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Queue, Stream, TestClock } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { DomainEvent } from "../../src/domain/Event.js"
import type { SessionId } from "../../src/domain/Ids.js"
import { makeHarness } from "../tools/Harness.js"

type Body = DomainEvent["event"]

describe("permission timeout on the test clock", () => {
  it.scoped("an unanswered request is settled expired exactly at permissionTimeoutSeconds", () =>
    Effect.gen(function* () {
      const h = yield* makeHarness({ hub: { permissionTimeoutSeconds: 300 } })
      const events = yield* Queue.unbounded<Body>()
      const ready = yield* Deferred.make<void>()
      yield* h.client.events.subscribe({ projectId: h.project.id }).pipe(
        Stream.runForEach((item) =>
          item._tag === "Ready" ? Deferred.succeed(ready, undefined) : item._tag === "Event" ? Queue.offer(events, item.event.event) : Effect.void
        ),
        Effect.forkScoped
      )
      yield* Deferred.await(ready)
      const next = (tag: Body["_tag"]): Effect.Effect<Body> =>
        Effect.flatMap(Queue.take(events), (e) => (e._tag === tag ? Effect.succeed(e) : next(tag)))

      const call = yield* Effect.fork(h.exec("write", { path: "late.txt", content: "x" }, { sessionId: "ses_1" as SessionId }))
      yield* next("PermissionAsked")
      yield* TestClock.adjust("299 seconds")
      assert.strictEqual((yield* h.client.permission.pending({ projectId: h.project.id })).length, 1, "still open a second before its timeout")
      assert.isNull(yield* Fiber.poll(call).pipe(Effect.map((o) => (o._tag === "Some" ? "done" : null))))

      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Fiber.join(call), { ok: false, error: "no answer to the permission request within 300s" })
      const replied = yield* next("PermissionReplied")
      assert.strictEqual(replied._tag === "PermissionReplied" ? replied.status : undefined, "expired")
      assert.deepStrictEqual(yield* h.client.permission.pending({ projectId: h.project.id }), [])
      assert.isFalse(fs.existsSync(path.join(h.workspace, "late.txt")))
    })
  )
})
