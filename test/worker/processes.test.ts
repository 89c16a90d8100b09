import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { shellQuote } from "../../src/runtime/ProcessRunner.js"
import { eventually, executorsLayer, fakeCli, isAlive, run, taskInput, tempDir } from "./support.js"

const fakeBins = { codex: fakeCli, kiro: fakeCli, claude: fakeCli }

interface CommandResult {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
  readonly truncated: boolean
}

describe("cli executor", () => {
  it.scopedLive("runs each adapter in the shared workdir and returns its output", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      for (const adapter of ["codex", "kiro", "claude"] as const) {
        const result = (yield* run(taskInput("cli", { prompt: `hello from ${adapter}`, adapter, workdir: { _tag: "shared", path: dir } })).pipe(
          Effect.provide(executorsLayer({ bins: fakeBins }))
        )) as CommandResult & { adapter: string }
        assert.strictEqual(result.exitCode, 0)
        assert.strictEqual(result.adapter, adapter)
        assert.include(result.stdout, `fake-cli: hello from ${adapter}\ncwd: ${fs.realpathSync(dir)}`)
        assert.isFalse(result.truncated)
        assert.strictEqual(fs.readFileSync(path.join(dir, "fake-cli-output.txt"), "utf8"), `hello from ${adapter}`)
      }
    })
  )

  it.scopedLive("a custom template gets the shell-quoted prompt, and only with --trust-shell", () =>
    Effect.gen(function* () {
      const prompt = `it's "quoted" $HOME`
      const payload = { prompt, adapter: "custom", template: `${process.execPath} ${shellQuote(fakeCli)} {prompt}` }
      const result = (yield* run(taskInput("cli", payload)).pipe(Effect.provide(executorsLayer({ trustShell: true })))) as CommandResult
      assert.include(result.stdout, `fake-cli: ${prompt}\n`)
      const refused = yield* Effect.flip(run(taskInput("cli", payload)).pipe(Effect.provide(executorsLayer())))
      assert.include(refused.message, "--trust-shell")
      assert.isFalse(refused.retryable)
    })
  )

  it.scopedLive("keeps the head and tail of a large output and says it truncated", () =>
    Effect.gen(function* () {
      const result = (yield* run(taskInput("cli", { prompt: "spam", adapter: "codex" })).pipe(
        Effect.provide(executorsLayer({ bins: fakeBins, maxOutputBytes: 4096, childEnv: { ...process.env, FAKE_CLI_SPAM: "200000" } }))
      )) as CommandResult
      assert.isTrue(result.truncated)
      assert.isBelow(result.stdout.length, 4200)
      assert.isTrue(result.stdout.startsWith("fake-cli: spam\n"))
      assert.match(result.stdout, /bytes truncated/)
      assert.isTrue(result.stdout.endsWith("fake-cli: done\n"))
    })
  )

  it.scopedLive("a non-zero exit fails the task with the exit code and stderr", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        run(taskInput("cli", { prompt: "boom", adapter: "claude" })).pipe(
          Effect.provide(executorsLayer({ bins: fakeBins, childEnv: { ...process.env, FAKE_CLI_EXIT: "3" } }))
        )
      )
      assert.include(error.message, "claude exited with code 3")
      assert.include(error.message, "fake-cli: exiting with code 3")
      assert.isTrue(error.retryable)
    })
  )

  it.scopedLive("a missing binary is a permanent failure naming the setting", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        run(taskInput("cli", { prompt: "x", adapter: "codex" })).pipe(Effect.provide(executorsLayer({ bins: { codex: "/nonexistent/codex" } })))
      )
      assert.include(error.message, "KIRIS_CODEX_BIN")
      assert.isFalse(error.retryable)
    })
  )

  it.scopedLive("a timeout kills the process", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const error = yield* Effect.flip(
        run(taskInput("cli", { prompt: "slow", adapter: "codex", timeoutMs: 1500, workdir: { _tag: "shared", path: dir } })).pipe(
          Effect.provide(executorsLayer({ bins: fakeBins, childEnv: { ...process.env, FAKE_CLI_SLEEP_MS: "60000" } }))
        )
      )
      assert.include(error.message, "timed out after 1.5s")
      assert.isTrue(error.retryable)
      const pid = Number(fs.readFileSync(path.join(dir, "fake-cli.pid"), "utf8"))
      assert.isFalse(isAlive(pid))
    })
  )

  it.scopedLive("interrupting a run kills the whole process group, grandchildren included", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      // bash stays the group leader and the CLI is its child: killing only bash would leave it running
      const template = `${process.execPath} ${shellQuote(fakeCli)} {prompt}; echo after`
      const fiber = yield* Effect.fork(
        run(taskInput("cli", { prompt: "long", adapter: "custom", template, workdir: { _tag: "shared", path: dir } })).pipe(
          Effect.provide(executorsLayer({ trustShell: true, childEnv: { ...process.env, FAKE_CLI_SLEEP_MS: "60000" } }))
        )
      )
      const pidFile = path.join(dir, "fake-cli.pid")
      const pid = yield* eventually("fake-cli.pid", () => fs.existsSync(pidFile) && Number(fs.readFileSync(pidFile, "utf8")))
      assert.isTrue(isAlive(pid))
      yield* Fiber.interrupt(fiber)
      assert.isFalse(isAlive(pid))
      assert.isFalse(fs.existsSync(path.join(dir, "fake-cli-output.txt")))
    })
  )
})

describe("shell and python executors", () => {
  it.scopedLive("are refused without --trust-shell, permanently, saying why", () =>
    Effect.gen(function* () {
      for (const kind of ["shell", "python"] as const) {
        const error = yield* Effect.flip(run(taskInput(kind, { command: "echo hi" })).pipe(Effect.provide(executorsLayer())))
        assert.include(error.message, "this worker was started without --trust-shell")
        assert.isFalse(error.retryable)
      }
    })
  )

  it.scopedLive("run bash and python with --trust-shell, with dependency results in KIRIS_INPUTS_FILE", () =>
    Effect.gen(function* () {
      const layer = executorsLayer({ trustShell: true })
      const shell = (yield* run(taskInput("shell", { command: "echo hi; echo oops >&2" })).pipe(Effect.provide(layer))) as CommandResult
      assert.deepStrictEqual(shell, { exitCode: 0, stdout: "hi\n", stderr: "oops\n", truncated: false })
      const python = (yield* run(taskInput("python", { command: "print(6 * 7)" })).pipe(Effect.provide(layer))) as CommandResult
      assert.strictEqual(python.stdout, "42\n")
      const withInputs = (yield* run(taskInput("shell", { command: 'cat "$KIRIS_INPUTS_FILE"' }, { tsk_1: { stdout: "one" } })).pipe(
        Effect.provide(layer)
      )) as CommandResult
      assert.deepStrictEqual(JSON.parse(withInputs.stdout), { tsk_1: { stdout: "one" } })
      const failed = yield* Effect.flip(run(taskInput("shell", { command: "echo bad >&2; exit 7" })).pipe(Effect.provide(layer)))
      assert.include(failed.message, "command exited with code 7")
      assert.include(failed.message, "bad")
    })
  )

  it.scopedLive("an isolated workdir is fresh and removed afterwards unless kept", () =>
    Effect.gen(function* () {
      const dataDir = tempDir()
      const layer = executorsLayer({ trustShell: true, dataDir })
      const removed = (yield* run(taskInput("shell", { command: "pwd; ls -A | wc -l; touch made" })).pipe(Effect.provide(layer))) as CommandResult
      const [cwd, count] = removed.stdout.trim().split("\n")
      assert.isTrue(cwd!.startsWith(path.join(fs.realpathSync(dataDir), "workdirs")))
      assert.strictEqual(count!.trim(), "0")
      assert.isFalse(fs.existsSync(cwd!))
      const kept = (yield* run(taskInput("shell", { command: "pwd; touch made", workdir: { _tag: "isolated", keep: true } })).pipe(
        Effect.provide(layer)
      )) as CommandResult
      assert.isTrue(fs.existsSync(path.join(kept.stdout.trim(), "made")))
    })
  )

  it.scopedLive("a missing shared workdir is a permanent failure", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        run(taskInput("shell", { command: "true", workdir: { _tag: "shared", path: "/nonexistent/kiris" } })).pipe(
          Effect.provide(executorsLayer({ trustShell: true }))
        )
      )
      assert.include(error.message, "/nonexistent/kiris")
      assert.isFalse(error.retryable)
    })
  )
})
