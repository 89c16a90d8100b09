import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as path from "node:path"
import type { SessionId } from "../../src/domain/Ids.js"
import { fakeModelEnv, startAgentHub } from "../support/AgentHub.js"
import { fakeOpenAI, lastUserText } from "../support/FakeOpenAI.js"
import { tempDir } from "../support/Hub.js"
import { chatArgs, runKiris, serveKiris, spawnKiris } from "../support/KirisProcess.js"

/**
 * `kiris chat` as a real process when things go wrong: the hub killed mid-turn (restarted, or
 * gone for good), another client's prompt queued on the same session, a failing turn.
 */

const SESSION_LINE = /^kiris chat: project \S+, session (\S+)$/m
const USAGE_LINE = /^tokens \d+ in · \d+ out · cost (unknown|\$\d+\.\d+)$/m

/** A promise and the function that settles it: holds a fake model reply until the test lets it go. */
const gate = () => {
  let open: () => void = () => {}
  const promise = new Promise<void>((resolve) => (open = resolve))
  return { promise, open }
}

/**
 * A served hub whose model hangs on the first request and a chat (`rest` args, `stdin`) waiting on
 * it; once the model is asked, the hub is stopped with `signal` and, after the chat says it lost
 * the hub (when `lost`), served again on the same data dir and ports.
 */
const chatAcrossRestart = (signal: NodeJS.Signals, rest: ReadonlyArray<string>, options: { readonly stdin?: string; readonly lost: boolean }) =>
  Effect.gen(function* () {
    const fake = yield* fakeOpenAI
    const env = fakeModelEnv(fake)
    const dataDir = path.join(tempDir(), "data")
    // a SIGTERMed hub gives the hanging turn its shutdown grace before it interrupts it: 1 s, not 10
    const first = yield* serveKiris(dataDir, { env: { ...env, KIRIS_SHUTDOWN_GRACE_SECONDS: "1" } })
    fake.script({ hang: true, text: "thinking" })
    const chat = yield* spawnKiris(chatArgs(first, ...rest), {
      cwd: tempDir("kiris-cwd-"),
      ...(options.stdin === undefined ? {} : { stdin: options.stdin })
    })
    yield* Effect.promise(() => fake.waitForRequests(1))

    first.proc.child.kill(signal)
    yield* first.proc.exited()
    if (options.lost) yield* chat.waitForStderrLine(/lost the hub at \d\d:\d\d:\d\d UTC; reconnecting/)
    const second = yield* serveKiris(dataDir, { env, httpPort: first.httpPort, tcpPort: first.tcpPort })
    return { fake, chat, second }
  })

describe("kiris chat resilience", () => {
  it.scopedLive(
    "after kill -9 of the hub mid-turn and a restart, -p reports the turn interrupted; --session S -p reports the earlier turn and runs the new prompt",
    () =>
      Effect.gen(function* () {
        const { fake, chat, second } = yield* chatAcrossRestart("SIGKILL", ["-p", "a long question"], { lost: true })

        const exit = yield* chat.exited("60 seconds")
        assert.strictEqual(exit.code, 1, chat.stderr())
        assert.strictEqual(chat.stdout(), "")
        assert.match(chat.stderr(), /reconnected to the hub/)
        assert.match(chat.stderr(), /^error: the turn was interrupted \(the hub restarted\)$/m)
        const sessionId = chat.stderr().match(SESSION_LINE)?.[1]
        assert.isDefined(sessionId, chat.stderr())

        fake.script({ text: "a fresh answer" })
        const again = yield* runKiris(chatArgs(second, "--session", sessionId!, "-p", "carry on"), { cwd: tempDir("kiris-cwd-") })
        assert.strictEqual(again.code, 0, again.stderr)
        assert.strictEqual(again.stdout, "a fresh answer\n")
        assert.match(again.stderr, /^note: the earlier turn \S+ did not complete: the turn was interrupted \(the hub restarted\)$/m)
        assert.match(again.stderr, USAGE_LINE)
        assert.strictEqual(lastUserText(fake.requests[1]!.body), "carry on")
      }),
    180_000
  )

  it.scopedLive(
    "-p reports the turn interrupted when the hub is stopped (SIGTERM) mid-turn and started again",
    () =>
      Effect.gen(function* () {
        const { chat } = yield* chatAcrossRestart("SIGTERM", ["-p", "a long question"], { lost: false })

        const exit = yield* chat.exited("60 seconds")
        assert.strictEqual(exit.code, 1, chat.stderr())
        assert.strictEqual(chat.stdout(), "")
        assert.match(chat.stderr(), /^error: the turn was interrupted \(the hub restarted\)$/m)
      }),
    180_000
  )

  it.scopedLive(
    "-p exits non-zero within --reconnect-timeout when the hub stays down",
    () =>
      Effect.gen(function* () {
        const fake = yield* fakeOpenAI
        const hub = yield* serveKiris(path.join(tempDir(), "data"), { env: fakeModelEnv(fake) })
        fake.script({ hang: true, text: "thinking" })
        const chat = yield* spawnKiris(chatArgs(hub, "--reconnect-timeout", "2", "-p", "a long question"), { cwd: tempDir("kiris-cwd-") })
        yield* Effect.promise(() => fake.waitForRequests(1))
        hub.proc.child.kill("SIGKILL")

        const exit = yield* chat.exited("30 seconds")
        assert.strictEqual(exit.code, 1, chat.stderr())
        assert.strictEqual(chat.stdout(), "")
        assert.match(chat.stderr(), /^error: lost the hub at \d\d:\d\d:\d\d UTC and could not reconnect within 2s$/m)
      }),
    120_000
  )

  it.scopedLive(
    "interactively, a chat that loses the hub mid-turn says so, reconnects after the restart, shows the turn interrupted and carries on",
    () =>
      Effect.gen(function* () {
        const { chat } = yield* chatAcrossRestart("SIGKILL", [], { stdin: "a long question\n", lost: true })

        const exit = yield* chat.exited("60 seconds")
        assert.strictEqual(exit.code, 0, chat.stderr())
        assert.match(chat.stderr(), /reconnected to the hub/)
        assert.match(chat.stderr(), /^the turn was interrupted \(the hub restarted\)$/m)
        assert.match(chat.stderr(), USAGE_LINE)
      }),
    180_000
  )

  it.scopedLive("-p prints the answer to its own prompt when another client's prompt is queued behind it", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake)
      const hold = gate()
      fake.scriptFor((b) => lastUserText(b) === "first question", { slow: { text: "answer one", delayMs: 0, until: hold.promise } })
      fake.scriptFor((b) => lastUserText(b) === "second question", { text: "answer two" })
      const chat = yield* spawnKiris(chatArgs(hub, "-p", "first question"), { cwd: tempDir("kiris-cwd-") })
      yield* Effect.promise(() => fake.waitForRequests(1))

      const client = yield* hub.tcpClient()
      const project = (yield* client.project.list()).find((p) => p.name === "default")!
      const [session] = yield* client.session.list({ projectId: project.id })
      const queued = yield* client.session.prompt({ projectId: project.id, sessionId: session!.id, text: "second question" })
      assert.strictEqual(queued._tag, "Queued")
      hold.open()

      const exit = yield* chat.exited("60 seconds")
      assert.strictEqual(exit.code, 0, chat.stderr())
      assert.strictEqual(chat.stdout(), "answer one\n")
      assert.match(chat.stderr(), USAGE_LINE)
    })
  )

  it.scopedLive("-p queued behind another client's turn waits for its own turn and prints only its answer", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake)
      const hold = gate()
      fake.scriptFor((b) => lastUserText(b) === "their question", { slow: { text: "their answer", delayMs: 0, until: hold.promise } })
      fake.scriptFor((b) => lastUserText(b) === "my question", { text: "my answer" })
      const client = yield* hub.tcpClient()
      const project = yield* client.project.create({ name: "shared", description: "" })
      const session = yield* client.session.create({ projectId: project.id })
      yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "their question" })
      yield* Effect.promise(() => fake.waitForRequests(1))

      const chat = yield* spawnKiris(chatArgs(hub, "--project", "shared", "--session", session.id as SessionId, "-p", "my question"), {
        cwd: tempDir("kiris-cwd-")
      })
      yield* chat.waitForStderrLine(/the prompt waits in its queue/)
      hold.open()

      const exit = yield* chat.exited("60 seconds")
      assert.strictEqual(exit.code, 0, chat.stderr())
      assert.strictEqual(chat.stdout(), "my answer\n")
      assert.notInclude(chat.stdout(), "their")
      assert.match(chat.stderr(), USAGE_LINE)
    })
  )

  it.scopedLive("-p exits non-zero with one line giving the error of a failed turn, and its tokens", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake)
      fake.script({ errorAfter: "half an answer", mode: "chunk", message: "model overloaded" })
      const run = yield* runKiris(chatArgs(hub, "-p", "try"), { cwd: tempDir("kiris-cwd-") })
      assert.strictEqual(run.code, 1)
      assert.strictEqual(run.stdout, "")
      const errors = run.stderr.split("\n").filter((l) => l.startsWith("error:"))
      assert.strictEqual(errors.length, 1, run.stderr)
      assert.match(errors[0]!, /^error: the turn failed: .*model overloaded/)
      assert.match(run.stderr, USAGE_LINE)
    })
  )

  it.scopedLive("-p exits non-zero naming the step limit when a turn stops at agentMaxSteps", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake, { agentMaxSteps: 1 })
      const client = yield* hub.tcpClient()
      yield* client.project.create({ name: "work", description: "", workspace: tempDir("kiris-ws-") })
      fake.script({ toolCalls: [{ name: "write", args: { path: "a.txt", content: "a" } }] }, { text: "never reached" })
      const run = yield* runKiris(chatArgs(hub, "--project", "work", "--yes", "-p", "keep going"), { cwd: tempDir("kiris-cwd-") })
      assert.strictEqual(run.code, 1, run.stderr)
      assert.strictEqual(run.stdout, "")
      assert.match(run.stderr, /^error: the turn failed \(max-steps\): stopped after 1 steps? .*still calling tools$/m)
      assert.match(run.stderr, USAGE_LINE)
    })
  )
})
