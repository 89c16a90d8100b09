import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { HubRpcClient } from "../../src/client/HubClient.js"
import type { ServerConfigShape } from "../../src/config/ServerConfig.js"
import type { PartData } from "../../src/domain/Session.js"
import { request as rest } from "../support/Http.js"
import { endlessToolCalls, type FakeOpenAI, fakeOpenAI, systemText, type ToolCallSpec, toolResults } from "../support/FakeOpenAI.js"
import { startWorker, workerKey } from "../worker/swarm-support.js"
import { tempDir } from "../worker/support.js"
import { startAgentHub, watchProject } from "../support/AgentHub.js"

/**
 * Remote sub-agents run with tools on a real `kiris worker`: the worker's tools are confined to its
 * workdir, follow its shell policy, and their calls and results stream into the child session.
 */

const isChild = (body: Parameters<typeof systemText>[0]) => systemText(body).includes("You are a sub-agent")

type ToolPart = Extract<PartData, { _tag: "tool" }>
const toolParts = (parts: ReadonlyArray<{ readonly data: PartData }>): ReadonlyArray<ToolPart> =>
  parts.flatMap((p) => (p.data._tag === "tool" ? [p.data] : []))

/**
 * A hub, a worker (with `args`) whose shared workdir is a fresh directory, and a parent turn whose
 * model hands `prompt` to a remote sub-agent; the sub-agent's model makes `calls` (one step), then
 * answers. Resolves once the parent turn has finished.
 */
const remoteTurn = (
  fake: FakeOpenAI,
  calls: ReadonlyArray<ToolCallSpec>,
  options: {
    readonly args?: ReadonlyArray<string>
    readonly asMemberWithoutExecute?: boolean
    readonly hub?: Partial<ServerConfigShape>
    /** Replaces the sub-agent's script (one step of `calls`, then an answer). */
    readonly child?: () => void
  } = {}
) =>
  Effect.gen(function* () {
    const hub = yield* startAgentHub(fake, options.hub)
    const admin: HubRpcClient = yield* hub.wsClient()
    const key = yield* workerKey(admin)
    const workdir = tempDir("kiris-remote-workdir-")
    yield* startWorker({
      name: "tool-worker",
      tcpPort: hub.tcpPort,
      key,
      args: ["--workdir", workdir, ...(options.args ?? [])],
      env: { KIRIS_MODEL: "openai-compatible:fake", KIRIS_OPENAI_COMPATIBLE_BASE_URL: fake.baseURL, KIRIS_LLM_MAX_RETRIES: "0" }
    })
    const project = yield* admin.project.create({ name: "remote-tools", description: "" })
    let client = admin
    if (options.asMemberWithoutExecute === true) {
      yield* admin.user.create({ name: "dana", password: "dana-password", isAdmin: false })
      const added = yield* admin.project.addMember({ projectId: project.id, user: "dana", role: "member" })
      assert.isFalse(added.execute)
      const login = yield* rest(hub, "POST", "/api/auth/login", { body: { name: "dana", password: "dana-password" } })
      client = yield* hub.wsClient((login.json as { token: string }).token)
    }
    const parent = yield* client.session.create({ projectId: project.id })
    const watch = yield* watchProject(client, project.id)
    if (options.child === undefined) {
      fake.scriptFor(isChild, { toolCalls: calls })
      fake.scriptFor(isChild, { text: "done remotely" })
    } else {
      options.child()
    }
    fake.script({ toolCalls: [{ id: "call_task", name: "task", args: { prompt: "do it on the swarm", remote: true } }] }, { text: "parent done" })
    yield* client.session.prompt({ projectId: project.id, sessionId: parent.id, text: "delegate to the swarm" })
    const [done] = yield* watch.turns(parent.id, 1)
    assert.strictEqual(done?.status, "completed")

    const parentHistory = yield* client.session.get({ projectId: project.id, sessionId: parent.id })
    const [task] = toolParts(parentHistory.messages[1]!.parts)
    const [child] = yield* client.session.list({ projectId: project.id, parentId: parent.id })
    const childHistory = yield* client.session.get({ projectId: project.id, sessionId: child!.id })
    return { project, workdir, task: task!, child: child!, childHistory, events: yield* watch.events }
  })

describe("remote sub-agents with tools", () => {
  it.scopedLive(
    "write runs in the worker's workdir, its call streams into the child session, and the parent gets the child session id",
    () =>
      Effect.gen(function* () {
        const fake = yield* fakeOpenAI
        const { project, workdir, task, child, childHistory, events } = yield* remoteTurn(fake, [
          { id: "call_write", name: "write", args: { path: "notes/remote.txt", content: "written on the worker\n" } }
        ])

        assert.strictEqual(fs.readFileSync(path.join(workdir, "notes", "remote.txt"), "utf8"), "written on the worker\n")
        assert.isFalse(fs.existsSync(path.join(project.workspace, "notes", "remote.txt")), "nothing is written in the hub's workspace")

        assert.deepStrictEqual(
          childHistory.messages.map((m) => [m.message.role, m.message.status]),
          [
            ["user", "completed"],
            ["assistant", "completed"]
          ]
        )
        const [write] = toolParts(childHistory.messages[1]!.parts)
        assert.strictEqual(write?.tool, "write")
        assert.strictEqual(write?.callId, "call_write")
        assert.strictEqual(write?.status, "completed")
        assert.deepStrictEqual(write?.input, { path: "notes/remote.txt", content: "written on the worker\n" })
        assert.deepStrictEqual(write?.output, {
          ok: true,
          output: "created notes/remote.txt (22 bytes)",
          metadata: { path: "notes/remote.txt", bytes: 22, created: true }
        })
        const childSteps = childHistory.messages[1]!.parts.map((p) => p.data._tag)
        assert.deepStrictEqual(childSteps, ["step-start", "tool", "step-finish", "step-start", "text", "step-finish"])
        const published = events.some(
          (e) =>
            e.event._tag === "PartUpdated" &&
            e.event.part.sessionId === child.id &&
            e.event.part.data._tag === "tool" &&
            e.event.part.data.status === "completed"
        )
        assert.isTrue(published, "the completed tool part was published live")
        const childStep2 = fake.requests.filter((r) => isChild(r.body))[1]!
        assert.strictEqual(toolResults(childStep2.body)[0]?.content, "created notes/remote.txt (22 bytes)")
        const offered = (fake.requests.find((r) => isChild(r.body))!.body.tools ?? []).map((t) => t.function.name)
        assert.deepStrictEqual(offered, ["read", "write", "edit", "list", "glob", "grep", "bash"])

        assert.strictEqual(task.status, "completed")
        const output = task.output as { output: string; metadata: Record<string, unknown> }
        assert.strictEqual(output.output, `done remotely\n\nsession: ${child.id}`)
        assert.deepStrictEqual(output.metadata, { agent: "general", remote: true, sessionId: child.id })
      }),
    { timeout: 120_000 }
  )

  it.scopedLive(
    "a remote sub-agent still calling tools at the step limit ends max-steps, and the parent's task call fails",
    () =>
      Effect.gen(function* () {
        const fake = yield* fakeOpenAI
        const { task, childHistory } = yield* remoteTurn(fake, [], {
          hub: { agentMaxSteps: 2 },
          child: () => fake.scriptFor(isChild, endlessToolCalls("list", { path: "." }), { times: 10 })
        })
        const answer = childHistory.messages[1]!.message
        assert.strictEqual(answer.status, "error")
        assert.strictEqual(answer.finishReason, "max-steps")
        assert.include(answer.error ?? "", "agentMaxSteps")
        assert.strictEqual(task.status, "error")
        assert.include(JSON.stringify(task.output), "agentMaxSteps")
      }),
    { timeout: 120_000 }
  )

  it.scopedLive(
    "without --trust-shell bash is refused and paths escaping the workdir are refused; the turn completes",
    () =>
      Effect.gen(function* () {
        const fake = yield* fakeOpenAI
        const outside = path.join(tempDir("kiris-remote-outside-"), "x")
        const { workdir, task, child, childHistory } = yield* remoteTurn(fake, [
          { id: "call_bash", name: "bash", args: { command: `touch ${JSON.stringify(outside)}` } },
          { id: "call_escape", name: "write", args: { path: "../x", content: "escaped" } },
          { id: "call_abs", name: "write", args: { path: outside, content: "escaped" } }
        ])

        assert.deepStrictEqual(
          childHistory.messages.map((m) => [m.message.role, m.message.status]),
          [
            ["user", "completed"],
            ["assistant", "completed"]
          ]
        )
        const byCall = new Map(toolParts(childHistory.messages[1]!.parts).map((p) => [p.callId, p]))
        const bash = byCall.get("call_bash")
        assert.strictEqual(bash?.status, "error")
        assert.match(bash?.error ?? "", /without --trust-shell/)
        assert.deepStrictEqual(bash?.input, { command: `touch ${JSON.stringify(outside)}` })
        assert.strictEqual(byCall.get("call_escape")?.status, "error")
        assert.match(byCall.get("call_escape")?.error ?? "", /escapes the workspace: \.\.\/x/)
        assert.strictEqual(byCall.get("call_abs")?.status, "error")
        assert.match(byCall.get("call_abs")?.error ?? "", /outside the workspace/)
        assert.isFalse(fs.existsSync(outside), "neither bash nor write reached outside the workdir")
        assert.isFalse(fs.existsSync(path.join(path.dirname(workdir), "x")))

        const childStep2 = fake.requests.filter((r) => isChild(r.body))[1]!
        assert.match(toolResults(childStep2.body).find((r) => r.tool_call_id === "call_bash")?.content ?? "", /without --trust-shell/)
        assert.strictEqual(task.status, "completed")
        assert.include((task.output as { output: string }).output, `session: ${child.id}`)
      }),
    { timeout: 120_000 }
  )

  it.scopedLive(
    "with --trust-shell bash runs in the worker's workdir",
    () =>
      Effect.gen(function* () {
        const fake = yield* fakeOpenAI
        const { workdir, childHistory } = yield* remoteTurn(
          fake,
          [{ id: "call_bash", name: "bash", args: { command: "pwd && echo made > made.txt" } }],
          { args: ["--trust-shell"] }
        )
        const [bash] = toolParts(childHistory.messages[1]!.parts)
        assert.strictEqual(bash?.status, "completed", JSON.stringify(bash))
        assert.strictEqual((bash?.output as { output: string }).output.trim(), fs.realpathSync(workdir))
        assert.strictEqual(fs.readFileSync(path.join(workdir, "made.txt"), "utf8"), "made\n")
      }),
    { timeout: 120_000 }
  )

  it.scopedLive(
    "a caller without the execute grant gets no bash on a worker, even one with --trust-shell",
    () =>
      Effect.gen(function* () {
        const fake = yield* fakeOpenAI
        const { workdir, childHistory } = yield* remoteTurn(fake, [{ id: "call_bash", name: "bash", args: { command: "echo made > made.txt" } }], {
          args: ["--trust-shell"],
          asMemberWithoutExecute: true
        })
        const offered = (fake.requests.find((r) => isChild(r.body))!.body.tools ?? []).map((t) => t.function.name)
        assert.deepStrictEqual(offered, ["read", "write", "edit", "list", "glob", "grep"])
        const [bash] = toolParts(childHistory.messages[1]!.parts)
        assert.strictEqual(bash?.status, "error")
        assert.isFalse(fs.existsSync(path.join(workdir, "made.txt")))
      }),
    { timeout: 120_000 }
  )

  it.scopedLive("enqueuing an agent task that may call bash needs the execute grant, like a shell task", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake)
      const admin = yield* hub.tcpClient()
      const project = yield* admin.project.create({ name: "agent-grant", description: "" })
      yield* admin.user.create({ name: "dana", password: "dana-password", isAdmin: false })
      yield* admin.project.addMember({ projectId: project.id, user: "dana", role: "member" })
      const login = yield* rest(hub, "POST", "/api/auth/login", { body: { name: "dana", password: "dana-password" } })
      const dana = yield* hub.tcpClient((login.json as { token: string }).token)
      const agent = (payload: Record<string, unknown>) =>
        dana.task.enqueue({ projectId: project.id, kind: "agent", payload: { sessionId: "ses_x", prompt: "p", ...payload } })

      for (const payload of [{}, { tools: ["read", "bash"] }]) {
        const refused = yield* Effect.flip(agent(payload))
        assert.strictEqual(refused._tag, "Forbidden", JSON.stringify(payload))
      }
      const fileOnly = yield* agent({ tools: ["read", "write", "edit"] })
      assert.strictEqual(fileOnly.kind, "agent")
    })
  )
})
