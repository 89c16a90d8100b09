import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { PartData } from "../../src/domain/Session.js"
import { fakeOpenAI, lastUserText, systemText, toolResults } from "../support/FakeOpenAI.js"
import { startWorker, workerKey } from "../worker/swarm-support.js"
import { startAgentHub, watchedSession, watchProject } from "../support/AgentHub.js"
import { backends } from "../support/Pg.js"

const isChild = (body: { readonly messages: ReadonlyArray<{ readonly role: string }> } & Parameters<typeof systemText>[0]) =>
  systemText(body).includes("You are a sub-agent")

const toolParts = (parts: ReadonlyArray<{ readonly data: PartData }>) => parts.flatMap((p) => (p.data._tag === "tool" ? [p.data] : []))

describe.each(backends)("sub-agents on %s", (backend) => {
  it.scopedLive("the task tool runs a child session whose answer returns to the parent turn with the child session id, watched live", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const { client, project, session: parent, watch } = yield* watchedSession(fake, backend, "subs", "ws")
      fake.scriptFor(isChild, { reasoning: "counting", text: "there are three files" })
      fake.script(
        { toolCalls: [{ id: "call_task", name: "task", args: { prompt: "count the files", description: "count files" } }] },
        { text: "the sub-agent found three files" }
      )
      yield* client.session.prompt({ projectId: project.id, sessionId: parent.id, text: "how many files?" })
      const [done] = yield* watch.turns(parent.id)
      assert.strictEqual(done?.status, "completed")

      const children = yield* client.session.list({ projectId: project.id, parentId: parent.id })
      assert.strictEqual(children.length, 1)
      const child = children[0]!
      assert.strictEqual(child.agent, "general")
      assert.strictEqual(child.model, parent.model)
      const childHistory = yield* client.session.get({ projectId: project.id, sessionId: child.id })
      assert.deepStrictEqual(
        childHistory.messages.map((m) => [m.message.role, m.message.status]),
        [
          ["user", "completed"],
          ["assistant", "completed"]
        ]
      )

      const parentHistory = yield* client.session.get({ projectId: project.id, sessionId: parent.id })
      const [task] = toolParts(parentHistory.messages[1]!.parts)
      assert.strictEqual(task?.tool, "task")
      assert.strictEqual(task?.status, "completed")
      // the child session's id comes back to the parent: in the metadata for clients, in the text for the model
      const output = task?.output as { output: string; metadata: Record<string, unknown> }
      assert.strictEqual(output.output, `there are three files\n\nsession: ${child.id}`)
      assert.deepStrictEqual(output.metadata, { agent: "general", remote: false, sessionId: child.id })
      const childRequest = fake.requests.find((r) => isChild(r.body))!
      assert.strictEqual(lastUserText(childRequest.body), "count the files")
      assert.ok(!(childRequest.body.tools ?? []).some((t) => t.function.name === "task"), "sub-agents get no task tool")
      const parentStep2 = fake.requests.filter((r) => !isChild(r.body))[1]!
      assert.strictEqual(toolResults(parentStep2.body)[0]?.content, `there are three files\n\nsession: ${child.id}`)

      const events = yield* watch.events
      const childDeltas = events.flatMap((e) => (e.event._tag === "PartDelta" && e.event.sessionId === child.id ? [e.event.delta] : []))
      assert.strictEqual(childDeltas.join(""), "countingthere are three files")
      const created = events.find((e) => e.event._tag === "SessionCreated" && e.event.session.id === child.id)
      assert.ok(created, "the child session's creation was published")
      const childDoneAt = events.findIndex(
        (e) =>
          e.event._tag === "MessageUpdated" &&
          e.event.message.sessionId === child.id &&
          e.event.message.role === "assistant" &&
          e.event.message.status === "completed"
      )
      const parentDoneAt = events.findIndex(
        (e) =>
          e.event._tag === "MessageUpdated" &&
          e.event.message.sessionId === parent.id &&
          e.event.message.role === "assistant" &&
          e.event.message.status === "completed"
      )
      assert.isAbove(childDoneAt, 0)
      assert.isAbove(parentDoneAt, childDoneAt)
    })
  )

  it.scopedLive("cancelling the parent cancels the running sub-agent and its upstream request", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const { client, project, session: parent, watch } = yield* watchedSession(fake, backend, "subs", "tcp")
      fake.scriptFor(isChild, { hang: true, text: "child working" })
      fake.script({ toolCalls: [{ name: "task", args: { prompt: "work forever" } }] })
      yield* client.session.prompt({ projectId: project.id, sessionId: parent.id, text: "delegate" })
      yield* watch.until((events) => (events.some((e) => e.event._tag === "PartDelta" && e.event.delta === "child working") ? true : undefined))
      const closed = fake.onClosed()
      yield* client.session.cancel({ projectId: project.id, sessionId: parent.id })
      yield* Effect.promise(() => closed).pipe(Effect.timeout("10 seconds"))
      const [child] = yield* client.session.list({ projectId: project.id, parentId: parent.id })
      const childTurns = yield* watch.turns(child!.id)
      assert.strictEqual(childTurns[0]?.status, "cancelled")
      const parentTurns = yield* watch.turns(parent.id)
      assert.strictEqual(parentTurns[0]?.status, "cancelled")
      const history = yield* client.session.get({ projectId: project.id, sessionId: parent.id })
      assert.strictEqual(toolParts(history.messages[1]!.parts)[0]?.status, "error")
      // the child's runner settles after the parent's turn ended: its idle status is the last word
      yield* watch.until((events) =>
        events.some((e) => e.event._tag === "SessionStatus" && e.event.sessionId === child!.id && e.event.status === "idle") ? true : undefined
      )
      const childSession = yield* client.session.get({ projectId: project.id, sessionId: child!.id })
      assert.strictEqual(childSession.session.status, "idle")
    })
  )
})

describe("remote sub-agents", () => {
  it.scopedLive(
    "a remote sub-agent runs on a real `kiris worker` and streams its parts into the child session",
    () =>
      Effect.gen(function* () {
        const fake = yield* fakeOpenAI
        const hub = yield* startAgentHub(fake)
        const client = yield* hub.wsClient()
        const key = yield* workerKey(client)
        yield* startWorker({
          name: "agent-worker",
          tcpPort: hub.tcpPort,
          key,
          env: { KIRIS_MODEL: "openai-compatible:fake", KIRIS_OPENAI_COMPATIBLE_BASE_URL: fake.baseURL, KIRIS_LLM_MAX_RETRIES: "0" }
        })
        const project = yield* client.project.create({ name: "remote", description: "" })
        const parent = yield* client.session.create({ projectId: project.id })
        const watch = yield* watchProject(client, project.id)
        fake.scriptFor(isChild, { reasoning: "thinking remotely", text: "answer from the swarm" })
        fake.script(
          { toolCalls: [{ id: "call_remote", name: "task", args: { prompt: "research this", remote: true } }] },
          { text: "the swarm answered" }
        )
        yield* client.session.prompt({ projectId: project.id, sessionId: parent.id, text: "ask the swarm" })
        const [done] = yield* watch.turns(parent.id)
        assert.strictEqual(done?.status, "completed")

        const parentHistory = yield* client.session.get({ projectId: project.id, sessionId: parent.id })
        const [task] = toolParts(parentHistory.messages[1]!.parts)
        assert.strictEqual(task?.status, "completed", JSON.stringify(task))
        const [child] = yield* client.session.list({ projectId: project.id, parentId: parent.id })
        const output = task?.output as { output: string; metadata: Record<string, unknown> }
        assert.strictEqual(output.output, `answer from the swarm\n\nsession: ${child!.id}`)
        assert.strictEqual(output.metadata["sessionId"], child!.id)
        const childHistory = yield* client.session.get({ projectId: project.id, sessionId: child!.id })
        assert.deepStrictEqual(
          childHistory.messages.map((m) => [m.message.role, m.message.status]),
          [
            ["user", "completed"],
            ["assistant", "completed"]
          ]
        )
        const parts = childHistory.messages[1]!.parts.map((p) => p.data)
        assert.deepStrictEqual(
          parts.map((p) => p._tag),
          ["step-start", "reasoning", "text", "step-finish"]
        )
        assert.deepStrictEqual(
          parts.flatMap((p) => (p._tag === "text" ? [p.text] : [])),
          ["answer from the swarm"]
        )
        assert.isAbove(childHistory.messages[1]!.message.usage.outputTokens, 0)
        const events = yield* watch.events
        const childDeltas = events.flatMap((e) => (e.event._tag === "PartDelta" && e.event.sessionId === child!.id ? [e.event.delta] : []))
        assert.strictEqual(childDeltas.join(""), "thinking remotelyanswer from the swarm")
        const tasks = yield* client.task.list({ projectId: project.id, kind: "agent" })
        assert.deepStrictEqual(
          tasks.map((t) => t.status),
          ["done"]
        )
      }),
    { timeout: 120_000 }
  )
})
