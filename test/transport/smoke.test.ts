import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { startHub } from "../support/Hub.js"

describe("hub smoke", () => {
  it.scopedLive("creates a project over TCP and sees the event over WebSocket", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const tcp = yield* hub.tcpClient()
      const ws = yield* hub.wsClient()
      const project = yield* tcp.project.create({ name: "p1", description: "" })
      const events = yield* ws.events.subscribe({ projectId: project.id }).pipe(Stream.take(1), Stream.runCollect)
      assert.strictEqual([...events][0]?._tag, "Ready")
      const list = yield* ws.project.list()
      assert.strictEqual(list.length, 1)
    })
  )
})
