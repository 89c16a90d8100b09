import { Data, Deferred, Duration, Effect, Exit, Option } from "effect"
import { spawn, type ChildProcess } from "node:child_process"

/**
 * Runs one child process for a task: detached in its own process group, output captured with a
 * head+tail cap, an optional timeout. When the effect is interrupted or times out, the WHOLE group
 * gets SIGTERM, then SIGKILL after a grace period, so nothing the command started survives it.
 */

export interface ProcessSpec {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string
  /** The complete environment of the child. */
  readonly env: Readonly<Record<string, string | undefined>>
  readonly stdin?: string
  readonly timeoutMs?: number | undefined
  /** Cap per stream; beyond it the first and last halves are kept. */
  readonly maxOutputBytes: number
  /** Between SIGTERM and SIGKILL of the group. */
  readonly killGraceMs?: number
}

export interface ProcessResult {
  readonly pid: number
  readonly exitCode: number | null
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
  readonly truncated: boolean
  readonly durationMs: number
}

export class ProcessError extends Data.TaggedError("ProcessError")<{
  readonly reason: "spawn" | "timeout"
  readonly message: string
  readonly stdout: string
  readonly stderr: string
}> {}

/** Keeps the first and last `cap / 2` bytes of a stream and counts the rest. */
export class OutputCapture {
  private readonly headCap: number
  private readonly tailCap: number
  private head: Array<Buffer> = []
  private headLen = 0
  private tail: Array<Buffer> = []
  private tailLen = 0
  total = 0

  constructor(readonly cap: number) {
    this.headCap = Math.floor(cap / 2)
    this.tailCap = cap - this.headCap
  }

  push(chunk: Buffer): void {
    this.total += chunk.length
    let rest = chunk
    if (this.headLen < this.headCap) {
      const take = Math.min(this.headCap - this.headLen, rest.length)
      this.head.push(rest.subarray(0, take))
      this.headLen += take
      rest = rest.subarray(take)
    }
    if (rest.length === 0) return
    this.tail.push(rest)
    this.tailLen += rest.length
    while (this.tail.length > 1 && this.tailLen - this.tail[0]!.length >= this.tailCap) {
      this.tailLen -= this.tail.shift()!.length
    }
  }

  get truncated(): boolean {
    return this.total > this.cap
  }

  text(): string {
    const head = Buffer.concat(this.head)
    const tail = Buffer.concat(this.tail)
    if (!this.truncated) return Buffer.concat([head, tail]).toString("utf8")
    const kept = tail.subarray(tail.length - this.tailCap)
    const omitted = this.total - head.length - kept.length
    return `${head.toString("utf8")}\n… [${omitted} bytes truncated] …\n${kept.toString("utf8")}`
  }
}

const groupAlive = (pid: number) => {
  try {
    process.kill(-pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const signalGroup = (pid: number, signal: NodeJS.Signals) => {
  try {
    process.kill(-pid, signal)
  } catch {
    // the group is already gone
  }
}

/** SIGTERM to the group, then SIGKILL once the grace period is over if any member is left. */
export const killGroup = (pid: number, graceMs: number) =>
  Effect.gen(function* () {
    if (!groupAlive(pid)) return
    signalGroup(pid, "SIGTERM")
    const deadline = Date.now() + graceMs
    while (groupAlive(pid) && Date.now() < deadline) yield* Effect.sleep(Duration.millis(25))
    if (groupAlive(pid)) signalGroup(pid, "SIGKILL")
  })

interface Running {
  readonly child: ChildProcess
  readonly stdout: OutputCapture
  readonly stderr: OutputCapture
  readonly exited: Deferred.Deferred<{ code: number | null; signal: string | null }, ProcessError>
  readonly closed: Deferred.Deferred<void>
  readonly startedAt: number
}

const start = (spec: ProcessSpec) =>
  Effect.gen(function* () {
    const exited = yield* Deferred.make<{ code: number | null; signal: string | null }, ProcessError>()
    const closed = yield* Deferred.make<void>()
    const stdout = new OutputCapture(spec.maxOutputBytes)
    const stderr = new OutputCapture(spec.maxOutputBytes)
    const child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: [spec.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"]
    })
    child.stdout?.on("data", (c: Buffer) => stdout.push(c))
    child.stderr?.on("data", (c: Buffer) => stderr.push(c))
    child.on("error", (e) => {
      Deferred.unsafeDone(
        exited,
        Exit.fail(new ProcessError({ reason: "spawn", message: `cannot run ${spec.command}: ${e.message}`, stdout: "", stderr: "" }))
      )
      Deferred.unsafeDone(closed, Exit.void)
    })
    child.on("exit", (code, signal) => Deferred.unsafeDone(exited, Exit.succeed({ code, signal })))
    child.on("close", () => Deferred.unsafeDone(closed, Exit.void))
    if (spec.stdin !== undefined && child.stdin) {
      child.stdin.on("error", () => {})
      child.stdin.end(spec.stdin)
    }
    return { child, stdout, stderr, exited, closed, startedAt: Date.now() } satisfies Running
  })

const stop = (running: Running, graceMs: number) =>
  Effect.gen(function* () {
    const pid = running.child.pid
    if (pid === undefined) return
    const exitedAlready = Option.isSome(yield* Deferred.poll(running.exited))
    const closedAlready = Option.isSome(yield* Deferred.poll(running.closed))
    if (exitedAlready && closedAlready) return
    yield* killGroup(pid, graceMs)
    running.child.stdout?.destroy()
    running.child.stderr?.destroy()
  })

/** Runs the process to completion; interruption kills its process group. */
export const runProcess = (spec: ProcessSpec): Effect.Effect<ProcessResult, ProcessError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const graceMs = spec.killGraceMs ?? 3000
      const running = yield* Effect.acquireRelease(start(spec), (r) => stop(r, graceMs))
      const wait = Effect.gen(function* () {
        const { code, signal } = yield* Deferred.await(running.exited)
        // output may still be in flight after the exit; a background child keeping the pipes open is not waited for
        yield* Deferred.await(running.closed).pipe(Effect.timeout(Duration.seconds(2)), Effect.ignore)
        return { code, signal }
      })
      const timed =
        spec.timeoutMs === undefined
          ? wait
          : wait.pipe(
              Effect.timeoutFail({
                duration: Duration.millis(spec.timeoutMs),
                onTimeout: () =>
                  new ProcessError({
                    reason: "timeout",
                    message: `timed out after ${formatMs(spec.timeoutMs ?? 0)}`,
                    stdout: running.stdout.text(),
                    stderr: running.stderr.text()
                  })
              })
            )
      const { code, signal } = yield* timed
      return {
        pid: running.child.pid ?? -1,
        exitCode: code,
        signal,
        stdout: running.stdout.text(),
        stderr: running.stderr.text(),
        truncated: running.stdout.truncated || running.stderr.truncated,
        durationMs: Date.now() - running.startedAt
      }
    })
  )

export const formatMs = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)}s` : `${ms}ms`)

/** `'it''s'`-style POSIX single quoting. */
export const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`
