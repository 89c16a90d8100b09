import { assert, describe, layer } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { ToolOutput } from "../../src/domain/ToolOutput.js"
import { MAX_OUTPUT_CHARS } from "../../src/tools/builtin/BashTool.js"
import { ToolHarness } from "./Harness.js"

/** Running, not merely a zombie waiting to be reaped. */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  const stat = `/proc/${pid}/stat`
  return !fs.existsSync(stat) || !/^\d+ \(.*\) Z/.test(fs.readFileSync(stat, "utf8"))
}

/** Polls (with a deadline) until the process is gone. */
const waitDead = (pid: number) =>
  Effect.suspend(() => (alive(pid) ? Effect.fail("alive") : Effect.void)).pipe(
    Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("5 seconds"))),
    Effect.orElse(() => Effect.sync(() => assert.fail(`process ${pid} is still running`)))
  )

const waitFile = (file: string) =>
  Effect.suspend(() =>
    fs.existsSync(file) && fs.readFileSync(file, "utf8").trim() !== ""
      ? Effect.succeed(Number(fs.readFileSync(file, "utf8").trim()))
      : Effect.fail("missing")
  ).pipe(Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("5 seconds"))), Effect.orDie)

const expectOk = (out: ToolOutput) => {
  if (!out.ok) assert.fail(out.error)
  return out
}
const expectErr = (out: ToolOutput) => {
  if (out.ok) assert.fail(`expected an error, got: ${out.output}`)
  return out.error
}

layer(ToolHarness.allowAll, { excludeTestServices: true })("bash tool", (it) => {
  describe("running commands", () => {
    it.effect("runs in the workspace and reports the exit code", () =>
      Effect.gen(function* () {
        const h = yield* ToolHarness
        const out = expectOk(yield* h.exec("bash", { command: "pwd; echo err >&2" }))
        assert.strictEqual(out.output, `${fs.realpathSync(h.workspace)}\nerr\n`)
        assert.strictEqual(out.metadata?.["exitCode"], 0)
        const failed = expectOk(yield* h.exec("bash", { command: "echo nope; exit 3" }))
        assert.strictEqual(failed.output, "nope\n\n[exit code 3]")
      })
    )

    it.effect("does not hand hub secrets to the command", () =>
      Effect.gen(function* () {
        const h = yield* ToolHarness
        const set = { KIRIS_TEST_SECRET_VALUE: "hidden", SOME_API_KEY: "hidden", KIRIS_TEST_PLAIN: "hidden", TEST_PLAIN_VALUE: "visible" }
        // set for this test only: later test files in the same process must not inherit them
        yield* Effect.acquireRelease(
          Effect.sync(() => Object.assign(process.env, set)),
          () => Effect.sync(() => Object.keys(set).forEach((k) => delete process.env[k]))
        )
        const out = expectOk(
          yield* h.exec("bash", { command: 'echo "${KIRIS_TEST_SECRET_VALUE:-unset} ${SOME_API_KEY:-unset} ${TEST_PLAIN_VALUE:-unset}"' })
        )
        assert.strictEqual(out.output, "unset unset visible\n")
      }).pipe(Effect.scoped)
    )
  })

  it.effect("times out, killing the whole process group", () =>
    Effect.gen(function* () {
      const h = yield* ToolHarness
      const pidFile = path.join(h.workspace, `timeout-${Date.now()}.pid`)
      const started = Date.now()
      const error = expectErr(yield* h.exec("bash", { command: `sleep 30 & echo $! > ${pidFile}; echo before; wait`, timeout: 0.5 }))
      assert.isBelow(Date.now() - started, 10_000)
      assert.match(error, /^command timed out after 0\.5s and was killed\nbefore$/)
      yield* waitDead(yield* waitFile(pidFile))
    })
  )

  it.effect("caps long output, keeping its beginning and end", () =>
    Effect.gen(function* () {
      const h = yield* ToolHarness
      const out = expectOk(yield* h.exec("bash", { command: "echo START; head -c 200000 /dev/zero | tr '\\0' a; echo; echo END" }))
      assert.isBelow(out.output.length, MAX_OUTPUT_CHARS + 200)
      assert.isTrue(out.output.startsWith("START\naaa"))
      assert.isTrue(out.output.endsWith("aaa\nEND\n"))
      assert.match(out.output, /\[\d+ characters of output omitted\]/)
      assert.strictEqual(out.metadata?.["truncated"], true)
    })
  )

  it.effect("kills what the command left in the background when the shell exits", () =>
    Effect.gen(function* () {
      const h = yield* ToolHarness
      const out = expectOk(yield* h.exec("bash", { command: "sleep 30 >/dev/null 2>&1 & echo $!" }))
      yield* waitDead(Number(out.output.trim()))
    })
  )

  it.effect("an aborted call returns promptly and kills the command", () =>
    Effect.gen(function* () {
      const h = yield* ToolHarness
      const pidFile = path.join(h.workspace, `abort-${Date.now()}.pid`)
      const controller = new AbortController()
      const call = yield* Effect.fork(h.exec("bash", { command: `echo $$ > ${pidFile}; sleep 30` }, { abortSignal: controller.signal }))
      const pid = yield* waitFile(pidFile)
      controller.abort()
      const error = expectErr(yield* call.await.pipe(Effect.flatten))
      assert.strictEqual(error, "the tool call was aborted")
      yield* waitDead(pid)
    })
  )

  it.effect("needs the execute scope", () =>
    Effect.gen(function* () {
      const h = yield* ToolHarness
      const created = yield* h.client.key.create({ name: "no-exec", scopes: ["read", "write"] })
      const limited = yield* Effect.scoped(Effect.flatMap(h.hub.tcpClient(created.key), (c) => c.user.whoami()))
      const error = expectErr(yield* h.exec("bash", { command: "echo hi" }, { caller: limited }))
      assert.strictEqual(error, "bash runs commands, which needs the execute grant in this project (and, for a key, the execute scope)")
    })
  )

  it.effect("needs the caller's execute grant in the project: a member without it is refused, with it runs", () =>
    Effect.gen(function* () {
      const h = yield* ToolHarness
      const user = yield* h.client.user.create({ name: "bash-member", password: "bash-member-password", isAdmin: false })
      yield* h.client.project.addMember({ projectId: h.project.id, user: user.id, role: "member" })
      const created = yield* h.client.key.create({ name: "member", scopes: ["read", "write", "execute"], userId: user.id })
      const member = yield* Effect.scoped(Effect.flatMap(h.hub.tcpClient(created.key), (c) => c.user.whoami()))
      const refused = expectErr(yield* h.exec("bash", { command: "echo hi" }, { caller: member }))
      assert.include(refused, "needs the execute grant in this project")
      yield* h.client.project.addMember({ projectId: h.project.id, user: user.id, role: "member", execute: true })
      const ran = yield* h.exec("bash", { command: "echo granted" }, { caller: member })
      assert.isTrue(ran.ok, JSON.stringify(ran))
    })
  )
})
