import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { startHubWithIdleModel } from "../support/Hub.js"
import { backendConfig, backends } from "../support/Pg.js"

describe.each(backends)("a hub on %s", (backend) => {
  it.scopedLive("starts, and answers whoami and a project listing", () =>
    Effect.gen(function* () {
      const hub = yield* startHubWithIdleModel(yield* backendConfig(backend))
      const client = yield* hub.tcpClient()
      const project = yield* client.project.create({ name: "on-" + backend, description: "" })
      const session = yield* client.session.create({ projectId: project.id })
      const sessions = yield* client.session.list({ projectId: project.id })
      assert.deepStrictEqual(
        sessions.map((s) => s.id),
        [session.id]
      )
      const listed = yield* client.project.list()
      assert.ok(listed.some((p) => p.id === project.id))
    })
  )
})
