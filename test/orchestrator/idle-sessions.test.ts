import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Schedule } from "effect"
import type { SessionId } from "../../src/domain/Ids.js"
import { Orchestrator } from "../../src/orchestrator/Orchestrator.js"
import { makeSessionTurns } from "../../src/orchestrator/SessionTurns.js"
import { startAgentHub, watchProject } from "../support/AgentHub.js"
import { backendConfig, backends } from "../support/Pg.js"
import { fakeOpenAI } from "../support/FakeOpenAI.js"

const sid = (i: number) => `ses_idle_${i}` as SessionId

describe("per-session bookkeeping", () => {
  it.scopedLive("a session's lock exists only while held or awaited, and still admits one holder at a time", () =>
    Effect.gen(function* () {
      const turns = yield* makeSessionTurns
      yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => sid(i)),
        (id) => turns.withLock(id)(Effect.void),
        { concurrency: 20, discard: true }
      )
      assert.deepStrictEqual(yield* turns.sizes, { locks: 0, active: 0, steered: 0 })

      const entered = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      let inside = 0
      let most = 0
      const hold = turns.withLock(sid(1))(
        Effect.gen(function* () {
          inside++
          most = Math.max(most, inside)
          yield* Deferred.succeed(entered, undefined)
          yield* Deferred.await(release)
          inside--
        })
      )
      const first = yield* Effect.fork(hold)
      yield* Deferred.await(entered)
      const waiters = yield* Effect.fork(
        Effect.forEach(
          [1, 2, 3],
          () =>
            turns.withLock(sid(1))(
              Effect.sync(() => {
                inside++
                most = Math.max(most, inside)
                inside--
              })
            ),
          { concurrency: "unbounded", discard: true }
        )
      )
      assert.strictEqual((yield* turns.sizes).locks, 1, "held: the lock is kept")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(first)
      yield* Fiber.join(waiters)
      assert.strictEqual(most, 1, "never two holders at once")
      assert.deepStrictEqual(yield* turns.sizes, { locks: 0, active: 0, steered: 0 }, "released: nothing left")
    })
  )

  it.scopedLive.each(backends)("sessions that were prompted and went idle leave no locks, turns or fibers behind (%s)", (backend) =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      fake.setDefault({ text: "ok" })
      const hub = yield* startAgentHub(fake, yield* backendConfig(backend))
      const client = yield* hub.tcpClient()
      const project = yield* client.project.create({ name: "idle", description: "" })
      const watch = yield* watchProject(client, project.id)
      const sessions = yield* Effect.forEach(Array.from({ length: 12 }), () => client.session.create({ projectId: project.id }))
      yield* Effect.forEach(sessions, (s) => client.session.prompt({ projectId: project.id, sessionId: s.id, text: "hello" }), {
        concurrency: 4,
        discard: true
      })
      yield* Effect.forEach(sessions, (s) => watch.turns(s.id), { discard: true })
      yield* watch.until((events) => {
        const idle = new Set<string>()
        for (const e of events) {
          const body = e.event
          if (body._tag === "SessionStatus" && body.status === "idle") idle.add(body.sessionId)
        }
        return sessions.every((s) => idle.has(s.id)) ? true : undefined
      })
      const orchestrator = Context.get(hub.context, Orchestrator)
      // the runner fibers end just after publishing idle: poll with a deadline
      const tracked = yield* orchestrator.tracked.pipe(
        Effect.filterOrFail((t) => t.locks + t.active + t.steered + t.fibers === 0),
        Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("5 seconds"))),
        Effect.orElse(() => orchestrator.tracked)
      )
      assert.deepStrictEqual(tracked, { locks: 0, active: 0, steered: 0, fibers: 0 })
    })
  )
})
