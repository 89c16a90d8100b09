import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Queue, Scope } from "effect"
import { type LinkInput, makeChatLink } from "../../src/cli/ChatLink.js"
import type { ProjectId } from "../../src/domain/Ids.js"
import { startAgentHub } from "../support/AgentHub.js"
import { fakeOpenAI } from "../support/FakeOpenAI.js"
import { tempDir } from "../support/Hub.js"

/** The next input of the link that satisfies `f` (others are skipped). */
const nextWhere = (inbox: Queue.Queue<LinkInput>, f: (input: LinkInput) => boolean) =>
  Queue.take(inbox).pipe(
    Effect.repeat({ until: f }),
    Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("timed out waiting for a chat input") })
  )

describe("kiris chat's connection", () => {
  it.scopedLive("after losing the hub it subscribes again from the last event it saw: what happened meanwhile reaches the chat", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const dataDir = tempDir()
      const firstScope = yield* Scope.make()
      const first = yield* Scope.extend(startAgentHub(fake, { dataDir }), firstScope)
      const inbox = yield* Queue.unbounded<LinkInput>()
      const link = yield* makeChatLink({
        target: { transport: "tcp", host: "127.0.0.1", port: first.tcpPort },
        token: first.adminKey,
        reconnectTimeout: Duration.seconds(20),
        deliver: (input) => Queue.offer(inbox, input),
        status: () => Effect.void
      })
      const project = yield* link.client().project.create({ name: "chat-resume", description: "" })
      const projectId = project.id as ProjectId
      const session = yield* link.client().session.create({ projectId })
      yield* link.watch(projectId)
      yield* link.client().session.rename({ projectId, sessionId: session.id, title: "seen" })
      yield* nextWhere(inbox, (i) => i._tag === "event" && i.event.event._tag === "SessionUpdated")

      // The hub stops; while the chat is away, the session changes on the restarted hub.
      yield* Scope.close(firstScope, Exit.void)
      const second = yield* startAgentHub(fake, { dataDir, port: first.httpPort, tcpPort: first.tcpPort })
      const admin = yield* second.tcpClient()
      yield* admin.session.rename({ projectId, sessionId: session.id, title: "while away 1" })
      yield* admin.session.rename({ projectId, sessionId: session.id, title: "while away 2" })

      // What the chat does once it notices the loss (a `lost` input or a call failing in transport).
      yield* link.reconnect
      const titles: Array<string> = []
      while (titles.length < 2) {
        const input = yield* nextWhere(inbox, (i) => i._tag === "event" || i._tag === "lagged")
        assert.strictEqual(input._tag, "event")
        if (input._tag === "event" && input.event.event._tag === "SessionUpdated") titles.push(input.event.event.session.title)
      }
      assert.deepStrictEqual(titles, ["while away 1", "while away 2"])
    })
  )
})
