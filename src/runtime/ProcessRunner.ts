import { Clock, Data, Deferred, Duration, Effect, Exit, Option, Schedule } from "effect"
import { spawn, type ChildProcess } from "node:child_process"

/**
 * The one way Kiris runs a command to completion (task executors, the `bash` tool, git for
 * workdirs): detached in its own process group, output captured with a head+tail cap, an optional
 * timeout. When the effect is interrupted or times out, the WHOLE group gets SIGTERM, then SIGKILL
 * after a grace period, so nothing the command started survives it.
 */

export interface ProcessSpec {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string
  /** The complete environment of the child. */
  readonly env: Readonly<Record<string, string | undefined>>
  readonly stdin?: string
  readonly timeoutMs?: number | undefined
  /** Cap per capture (bytes); beyond it the beginning and the end are kept. */
  readonly maxOutputBytes: number
  /** Share of the cap kept from the beginning (the rest from the end); one half by default. */
  readonly headShare?: number
  /** The marker standing for what was cut from the middle; `[N bytes truncated]` by default. */
  readonly omittedNote?: (bytes: number) => string
  /** stdout and stderr into one capture, in arrival order (`stdout` holds it, `stderr` is empty). */
  readonly combineOutput?: boolean
  /** When the command itself exits, kill at once whatever it left running in its group. */
  readonly killGroupOnExit?: boolean
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

const defaultNote = (bytes: number) => `[${bytes} bytes truncated]`

/** Keeps the first `cap * headShare` and the last bytes of a stream up to `cap`, and counts the rest. */
export class OutputCapture {
  private readonly headCap: number
  private readonly tailCap: number
  private head: Array<Buffer> = []
  private headLen = 0
  private tail: Array<Buffer> = []
  private tailLen = 0
  total = 0

  constructor(
    readonly cap: number,
    headShare = 0.5,
    private readonly note: (bytes: number) => string = defaultNote
  ) {
    this.headCap = Math.floor(cap * headShare)
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
    return `${head.toString("utf8")}\n… ${this.note(omitted)} …\n${kept.toString("utf8")}`
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
    yield* Effect.suspend(() => (groupAlive(pid) ? Effect.fail("alive") : Effect.void)).pipe(
      Effect.retry(Schedule.spaced(Duration.millis(25)).pipe(Schedule.upTo(Duration.millis(graceMs)))),
      Effect.ignore
    )
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
    const capture = () => new OutputCapture(spec.maxOutputBytes, spec.headShare, spec.omittedNote)
    const stdout = capture()
    const stderr = spec.combineOutput === true ? stdout : capture()
    const startedAt = yield* Clock.currentTimeMillis
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
    child.on("exit", (code, signal) => {
      // whatever the command left running in its group would keep the pipes open: it ends with the command
      if (spec.killGroupOnExit === true && child.pid !== undefined) signalGroup(child.pid, "SIGKILL")
      Deferred.unsafeDone(exited, Exit.succeed({ code, signal }))
    })
    child.on("close", () => Deferred.unsafeDone(closed, Exit.void))
    if (spec.stdin !== undefined && child.stdin) {
      child.stdin.on("error", () => {})
      child.stdin.end(spec.stdin)
    }
    return { child, stdout, stderr, exited, closed, startedAt } satisfies Running
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

/** The captured output: both streams, or the one combined capture as `stdout`. */
const outputs = (running: Running) => ({
  stdout: running.stdout.text(),
  stderr: running.stderr === running.stdout ? "" : running.stderr.text()
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
                  new ProcessError({ reason: "timeout", message: `timed out after ${formatMs(spec.timeoutMs ?? 0)}`, ...outputs(running) })
              })
            )
      const { code, signal } = yield* timed
      const endedAt = yield* Clock.currentTimeMillis
      return {
        pid: running.child.pid ?? -1,
        exitCode: code,
        signal,
        ...outputs(running),
        truncated: running.stdout.truncated || running.stderr.truncated,
        durationMs: endedAt - running.startedAt
      }
    })
  )

export const formatMs = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)}s` : `${ms}ms`)

/** `'it''s'`-style POSIX single quoting. */
export const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`
