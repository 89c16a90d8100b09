import { assert, describe, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { MessageId, ProjectId, SessionId } from "../../src/domain/Ids.js"
import { FileLocks } from "../../src/files/FileLocks.js"

const project = ProjectId.make("prj_locks")
const sesA = SessionId.make("ses_a")
const sesB = SessionId.make("ses_b")
const msg = MessageId.make("msg_a")

describe("FileLocks on the test clock", () => {
  it.effect("a lock lapses at its expiry, not before, and a renewal moves the expiry", () =>
    Effect.gen(function* () {
      const locks = yield* FileLocks
      assert.isUndefined(yield* locks.take(project, "a.txt", sesA, msg, 1000))
      assert.strictEqual((yield* locks.list(project))[0]?.expiresAt, 1000)

      yield* TestClock.adjust("999 millis")
      assert.strictEqual((yield* locks.holderOf(project, "a.txt"))?.sessionId, sesA, "held until its expiry")
      assert.strictEqual((yield* locks.take(project, "a.txt", sesB, msg, 1000))?.sessionId, sesA, "another session is refused")

      assert.isUndefined(yield* locks.take(project, "a.txt", sesA, msg, 1000), "the holder renews")
      yield* TestClock.adjust("999 millis")
      assert.strictEqual((yield* locks.holderOf(project, "a.txt"))?.sessionId, sesA, "the renewal counts from its own time")

      yield* TestClock.adjust("1 millis")
      assert.isUndefined(yield* locks.holderOf(project, "a.txt"), "lapsed at expiresAt")
      assert.deepStrictEqual(yield* locks.list(project), [])
      assert.isUndefined(yield* locks.take(project, "a.txt", sesB, msg, 1000), "free for another session")
    }).pipe(Effect.provide(FileLocks.Default))
  )
})
