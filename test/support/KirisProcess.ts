import { Deferred, type Duration, Effect, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** Runs `node bin/kiris.js …` as a child process, as a user would, with no KIRIS_* settings inherited. */

export const kirisBin = fileURLToPath(new URL("../../bin/kiris.js", import.meta.url))

export interface SpawnOptions {
  readonly cwd: string
  readonly env?: Record<string, string>
  /** Written to stdin, which is then closed; stdin is closed at once when absent. */
  readonly stdin?: string
  /** Leaves stdin open after writing `stdin` (the test ends it with `child.stdin.end()`). */
  readonly keepStdinOpen?: boolean
}

export interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface KirisProcess {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  /** Waits (up to `timeout`) for a complete stdout line matching `pattern`. */
  readonly waitForLine: (pattern: RegExp, timeout?: Duration.DurationInput) => Effect.Effect<RegExpMatchArray>
  /** Waits (up to `timeout`) for a complete stderr line matching `pattern`. */
  readonly waitForStderrLine: (pattern: RegExp, timeout?: Duration.DurationInput) => Effect.Effect<RegExpMatchArray>
  /** Waits (up to `timeout`) for the process to exit with its streams drained. */
  readonly exited: (timeout?: Duration.DurationInput) => Effect.Effect<Exited>
}

const cleanEnv = (extra: Record<string, string> = {}) => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("KIRIS_")) env[k] = v
  return { ...env, NO_COLOR: "1", ...extra }
}

const completeLines = (text: string) => text.split("\n").slice(0, -1)

/** Spawns the CLI for the caller's scope (killed with SIGKILL if still running when the scope closes). */
export const spawnKiris = (args: ReadonlyArray<string>, options: SpawnOptions): Effect.Effect<KirisProcess, never, Scope.Scope> =>
  Effect.gen(function* () {
    const closed = yield* Deferred.make<Exited>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => spawn(process.execPath, [kirisBin, ...args], { cwd: options.cwd, env: cleanEnv(options.env), stdio: "pipe" })),
      (c) =>
        c.exitCode === null && c.signalCode === null
          ? Effect.sync(() => c.kill("SIGKILL")).pipe(Effect.zipRight(Deferred.await(closed)))
          : Effect.void
    )
    let stdout = ""
    let stderr = ""
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.once("close", (code, signal) => Deferred.unsafeDone(closed, Effect.succeed({ code, signal })))
    if (options.keepStdinOpen === true) child.stdin!.write(options.stdin ?? "")
    else child.stdin!.end(options.stdin ?? "")

    const describe = () => `stdout:\n${stdout}\nstderr:\n${stderr}`

    const waitFor =
      (which: "stdout" | "stderr") =>
      (pattern: RegExp, timeout: Duration.DurationInput = "30 seconds") =>
        Effect.async<RegExpMatchArray, Error>((resume) => {
          const stream = which === "stdout" ? child.stdout! : child.stderr!
          const find = () => {
            for (const line of completeLines(which === "stdout" ? stdout : stderr)) {
              const m = line.match(pattern)
              if (m) return m
            }
            return undefined
          }
          const onData = () => {
            const m = find()
            if (m) {
              cleanup()
              resume(Effect.succeed(m))
            }
          }
          const onClose = () => {
            cleanup()
            const m = find()
            resume(m ? Effect.succeed(m) : Effect.fail(new Error(`kiris exited before printing a ${which} line matching ${pattern}\n${describe()}`)))
          }
          const cleanup = () => {
            stream.off("data", onData)
            child.off("close", onClose)
          }
          const already = find()
          if (already) return resume(Effect.succeed(already))
          stream.on("data", onData)
          child.once("close", onClose)
          return Effect.sync(cleanup)
        }).pipe(
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () => new Error(`no ${which} line matching ${pattern} within ${String(timeout)}\n${describe()}`)
          }),
          Effect.orDie
        )

    const exited = (timeout: Duration.DurationInput = "30 seconds") =>
      Deferred.await(closed).pipe(
        Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error(`kiris did not exit within ${String(timeout)}\n${describe()}`) }),
        Effect.orDie
      )

    return {
      child,
      stdout: () => stdout,
      stderr: () => stderr,
      waitForLine: waitFor("stdout"),
      waitForStderrLine: waitFor("stderr"),
      exited
    } satisfies KirisProcess
  })

export interface Finished extends Exited {
  readonly stdout: string
  readonly stderr: string
}

/** Runs the CLI to completion and returns its exit code and output. */
export const runKiris = (args: ReadonlyArray<string>, options: SpawnOptions): Effect.Effect<Finished> =>
  Effect.scoped(
    Effect.gen(function* () {
      const proc = yield* spawnKiris(args, options)
      const exit = yield* proc.exited()
      return { ...exit, stdout: proc.stdout(), stderr: proc.stderr() }
    })
  )

export interface ServeOptions {
  /** Environment of the hub (model settings, …). */
  readonly env?: Record<string, string>
  /** Fixed ports, e.g. those of an earlier run on the same data dir; 0 (any free port) when absent. */
  readonly httpPort?: number
  readonly tcpPort?: number
}

export interface ServedHub {
  readonly proc: KirisProcess
  readonly dataDir: string
  readonly httpPort: number
  readonly tcpPort: number
  readonly httpUrl: string
  readonly adminKey: string
}

const LISTENING = /^kiris listening http=http:\/\/127\.0\.0\.1:(\d+) tcp=127\.0\.0\.1:(\d+)$/

/**
 * Runs `kiris serve` on `dataDir` for the caller's scope and waits until it listens. Run it again
 * on the same dir and ports to restart the hub after killing it.
 */
export const serveKiris = (dataDir: string, options: ServeOptions = {}): Effect.Effect<ServedHub, never, Scope.Scope> =>
  Effect.gen(function* () {
    const args = ["serve", "--data-dir", dataDir, "--port", String(options.httpPort ?? 0), "--tcp-port", String(options.tcpPort ?? 0)]
    const proc = yield* spawnKiris(args, { cwd: path.dirname(dataDir), ...(options.env ? { env: options.env } : {}) })
    const listening = yield* proc.waitForLine(LISTENING, "60 seconds")
    const httpPort = Number(listening[1])
    const adminKey = fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim()
    return { proc, dataDir, httpPort, tcpPort: Number(listening[2]), httpUrl: `http://127.0.0.1:${httpPort}`, adminKey }
  })

/** `kiris chat` arguments against `hub` with its admin key, then `rest`. */
export const chatArgs = (hub: { readonly httpUrl: string; readonly adminKey: string }, ...rest: ReadonlyArray<string>) => [
  "chat",
  "--hub-http",
  hub.httpUrl,
  "--token",
  hub.adminKey,
  ...rest
]
