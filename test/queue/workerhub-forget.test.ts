import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Scope, Exit, Stream } from "effect"
import { FORGET_AFTER_MS, MAILBOX_CAPACITY, MAX_DISCONNECTED } from "../../src/queue/WorkerHub.js"
import type { TaskId } from "../../src/domain/Ids.js"
import { makeManualClock } from "../support/ManualClock.js"
import { connection, eventually, startQueue, worker } from "./support.js"

/** Connects a worker on its own connection and drops it again. */
const connectAndLeave = (hub: Effect.Effect.Success<ReturnType<typeof startQueue>>["hub"], name: string, clientId: number) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const pull = yield* Stream.toPull(hub.connect({ workerId: worker(name), name, kinds: ["noop"], capacity: 1 }, connection(clientId))).pipe(
      Scope.extend(scope)
    )
    yield* Effect.orDie(pull)
    yield* Scope.close(scope, Exit.void)
  })

describe("WorkerHub forgets", () => {
  it.scopedLive("disconnected workers once they have been gone long enough, without anyone listing them", () =>
    Effect.gen(function* () {
      const { hub } = yield* startQueue()
      const manual = makeManualClock()
      yield* Effect.gen(function* () {
        for (let i = 0; i < 20; i++) yield* connectAndLeave(hub, `gone${i}`, i + 1)
        assert.strictEqual(yield* hub.size, 20, "recently disconnected workers are still known")
        manual.advance(FORGET_AFTER_MS + 1000)
        yield* connectAndLeave(hub, "later", 100)
        assert.strictEqual(yield* hub.size, 1, "the long-gone ones are forgotten on the next disconnect")
      }).pipe(Effect.withClock(manual.clock))
    })
  )

  it.scopedLive("at most MAX_DISCONNECTED disconnected workers at a time, however many came and went", () =>
    Effect.gen(function* () {
      const { hub } = yield* startQueue()
      for (let i = 0; i < MAX_DISCONNECTED + 50; i++) yield* connectAndLeave(hub, `churn${i}`, i + 1)
      assert.strictEqual(yield* hub.size, MAX_DISCONNECTED)
    })
  )

  it.scopedLive("a worker that does not read its pushes holds up the caller instead of growing its mailbox", () =>
    Effect.gen(function* () {
      const { hub } = yield* startQueue()
      const pull = yield* Stream.toPull(hub.connect({ workerId: worker("slow"), name: "slow", kinds: ["noop"], capacity: 1 }, connection(1)))
      // the connection registers on its first pull (Registered, WorkAvailable); then nothing is read
      let read = Chunk.size(yield* Effect.orDie(pull))
      const cancels = MAILBOX_CAPACITY + 40
      const caller = yield* Effect.fork(
        Effect.forEach(
          Array.from({ length: cancels }, (_, i) => `tsk_${i}` as TaskId),
          (id) => hub.cancel(worker("slow"), id),
          { discard: true }
        )
      )
      yield* eventually(hub.mailboxSize(worker("slow")), (n) => n >= MAILBOX_CAPACITY)
      // the queue's size counts the one offer the (sequential) caller is suspended in
      assert.strictEqual(yield* hub.mailboxSize(worker("slow")), MAILBOX_CAPACITY + 1, "the mailbox stops at its capacity")
      assert.isNull(caller.unsafePoll(), "the caller waits for the worker")
      while (read < cancels + 2) read += Chunk.size(yield* Effect.orDie(pull))
      yield* Fiber.join(caller)
      assert.strictEqual(read, cancels + 2, "every push arrives once read (Registered, WorkAvailable, the cancels)")
    })
  )
})
