import { assert, describe, it } from "@effect/vitest"
import { Context, Effect } from "effect"
import { ApiKeys } from "../../src/auth/ApiKeys.js"
import { startHub } from "../support/Hub.js"
import { makeManualClock } from "../support/ManualClock.js"

describe("API key last use", () => {
  it.scopedLive("remembers only keys used in the last minute, however many keys were ever used", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const client = yield* hub.tcpClient()
      const keys = Context.get(hub.context, ApiKeys)
      const created = yield* Effect.forEach(
        Array.from({ length: 30 }, (_, i) => i),
        (i) => client.key.create({ name: `k${i}`, scopes: ["read"] })
      )
      // its own time, a day ahead: the keys this test's client used on the real clock are a minute old as soon as it moves
      const manual = makeManualClock(Date.now() + 86_400_000)
      const use = (key: string) => keys.authenticate(`Bearer ${key}`).pipe(Effect.withClock(manual.clock))

      yield* Effect.forEach(created, (c) => use(c.key), { discard: true })
      assert.strictEqual(yield* keys.touchedSize, 30, "the client's own key, used on the real clock, is a day old here and swept")

      manual.advance(61_000)
      yield* use(created[0]!.key)
      assert.strictEqual(yield* keys.touchedSize, 1, "a minute later only the key used since is remembered")

      manual.advance(30_000)
      yield* Effect.forEach(created.slice(0, 5), (c) => use(c.key), { discard: true })
      assert.strictEqual(yield* keys.touchedSize, 5)
    })
  )
})
