import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fakeOpenAI, lastUserText, toolResults } from "../support/FakeOpenAI.js"
import { tempDir } from "../support/Hub.js"
import { chatArgs, runKiris, spawnKiris } from "../support/KirisProcess.js"
import { startAgentHub } from "../support/AgentHub.js"

/** `kiris chat` as a real process against an in-process hub whose model is the fake server. */

/** The fake model, a hub using it, and a project "work" whose workspace is a fresh temp dir. */
const workspaceHub = Effect.gen(function* () {
  const fake = yield* fakeOpenAI
  const hub = yield* startAgentHub(fake)
  const workspace = tempDir("kiris-ws-")
  const client = yield* hub.tcpClient()
  yield* client.project.create({ name: "work", description: "", workspace })
  return { fake, hub, workspace }
})

describe("kiris chat", () => {
  it.scopedLive("-p prints the final answer of a turn in the default project and exits 0", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake)
      fake.script({ reasoning: "hmm", text: "hello back" })
      const run = yield* runKiris(chatArgs(hub, "-p", "hello there"), { cwd: tempDir("kiris-cwd-") })
      assert.strictEqual(run.code, 0, run.stderr)
      assert.strictEqual(run.stdout, "hello back\n")
      assert.strictEqual(lastUserText(fake.requests[0]!.body), "hello there")
      const client = yield* hub.tcpClient()
      const projects = yield* client.project.list()
      assert.deepStrictEqual(
        projects.map((p) => p.name),
        ["default"]
      )
      const sessions = yield* client.session.list({ projectId: projects[0]!.id })
      assert.strictEqual(sessions.length, 1)

      fake.script({ text: "second answer" })
      const again = yield* runKiris(chatArgs(hub, "--session", sessions[0]!.id, "-p", "and again"), { cwd: tempDir("kiris-cwd-") })
      assert.strictEqual(again.code, 0, again.stderr)
      assert.match(again.stdout, /second answer\n$/)
      assert.deepStrictEqual(fake.requests[1]!.body.messages.filter((m) => m.role === "user").length, 2)
    })
  )

  it.scopedLive("-p --yes approves permission requests and shows tool calls compactly", () =>
    Effect.gen(function* () {
      const { fake, hub, workspace } = yield* workspaceHub
      fake.script(
        { toolCalls: [{ name: "write", args: { path: "notes.txt", content: "a\nb\n" } }] },
        { toolCalls: [{ name: "read", args: { path: "notes.txt" } }] },
        { text: "wrote and read notes.txt" }
      )
      const run = yield* runKiris(chatArgs(hub, "--project", "work", "--yes", "-p", "write notes"), { cwd: tempDir("kiris-cwd-") })
      assert.strictEqual(run.code, 0, run.stderr)
      assert.strictEqual(run.stdout, "wrote and read notes.txt\n")
      assert.strictEqual(fs.readFileSync(path.join(workspace, "notes.txt"), "utf8"), "a\nb\n")
      assert.match(run.stderr, /allowed: /)
      assert.match(run.stderr, /⚙ write notes\.txt → /)
      assert.match(run.stderr, /⚙ read notes\.txt → 2 lines/)
    })
  )

  it.scopedLive("-p without --yes and without a terminal refuses permission requests", () =>
    Effect.gen(function* () {
      const { fake, hub, workspace } = yield* workspaceHub
      fake.script({ toolCalls: [{ name: "write", args: { path: "x.txt", content: "x" } }] }, { text: "could not write" })
      const run = yield* runKiris(chatArgs(hub, "--project", "work", "-p", "write x"), { cwd: tempDir("kiris-cwd-") })
      assert.strictEqual(run.code, 0, run.stderr)
      assert.strictEqual(run.stdout, "could not write\n")
      assert.match(run.stderr, /refused: /)
      assert.isFalse(fs.existsSync(path.join(workspace, "x.txt")))
      assert.match(toolResults(fake.requests[1]!.body)[0]?.content ?? "", /refused|reject|could not be asked/i)
    })
  )

  it.scopedLive("reads prompts and permission answers from piped input and streams the answers", () =>
    Effect.gen(function* () {
      const { fake, hub, workspace } = yield* workspaceHub
      fake.script({ text: "first reply" }, { toolCalls: [{ name: "write", args: { path: "y.txt", content: "yes" } }] }, { text: "done writing" })
      const run = yield* runKiris(chatArgs(hub, "--project", "work"), {
        cwd: tempDir("kiris-cwd-"),
        stdin: "question one\nplease write\ny\n"
      })
      assert.strictEqual(run.code, 0, run.stderr)
      assert.strictEqual(run.stdout, "first reply\n⚙ write y.txt → created y.txt (3 bytes)\ndone writing\n")
      assert.strictEqual(fs.readFileSync(path.join(workspace, "y.txt"), "utf8"), "yes")
      assert.match(run.stderr, /allow\? \[y\]es/)
    })
  )

  it.scopedLive("drops a permission question whose request expired while it waited, and carries on", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake, { permissionTimeoutSeconds: 1 })
      const workspace = tempDir("kiris-ws-")
      yield* (yield* hub.tcpClient()).project.create({ name: "work", description: "", workspace })
      fake.script({ toolCalls: [{ name: "write", args: { path: "late.txt", content: "late" } }] }, { text: "could not write" })
      const chat = yield* spawnKiris(chatArgs(hub, "--project", "work"), { cwd: tempDir("kiris-cwd-"), stdin: "please write\n", keepStdinOpen: true })
      yield* chat.waitForStderrLine(/^\(no longer asking about write late\.txt: it expired/, "30 seconds")
      yield* chat.waitForLine(/^could not write$/, "30 seconds")
      chat.child.stdin!.end()
      const exit = yield* chat.exited("30 seconds")
      assert.strictEqual(exit.code, 0, chat.stderr())
      assert.isFalse(fs.existsSync(path.join(workspace, "late.txt")))
      assert.notMatch(chat.stderr(), /permission reply failed/)
    })
  )

  it.scopedLive("reports an unreachable hub in one line", () =>
    Effect.gen(function* () {
      const run = yield* runKiris(["chat", "--hub-http", "http://127.0.0.1:1", "--token", "x", "-p", "hi"], { cwd: tempDir("kiris-cwd-") })
      assert.strictEqual(run.code, 1)
      assert.match(run.stderr, /^error: cannot reach hub/)
    })
  )
})
