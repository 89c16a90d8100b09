import { Effect, Schema } from "effect"
import { spawn } from "node:child_process"
import { defineTool, described, ToolFailure } from "../Tool.js"
import { resolveInWorkspace } from "../Workspace.js"

const DEFAULT_TIMEOUT_SECONDS = 120
const MAX_TIMEOUT_SECONDS = 600
/** Characters of output kept: the first third and the last two thirds of this budget. */
export const MAX_OUTPUT_CHARS = 30_000
const KILL_GRACE_MS = 2000

/** Hub credentials and obvious secrets are not handed to commands the model writes. */
const commandEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.startsWith("KIRIS_") && k !== "KIRO_SWARM_KEY" && !/(SECRET|TOKEN|PASSWORD|API_KEY)/i.test(k)
    )
  )

/** Keeps the head and the tail of a long output, counting what was dropped in between. */
const capture = (budget: number) => {
  const headMax = Math.floor(budget / 3)
  const tailMax = budget - headMax
  let head = ""
  let tail = ""
  let dropped = 0
  return {
    push: (chunk: string) => {
      if (head.length < headMax) {
        const take = chunk.slice(0, headMax - head.length)
        head += take
        chunk = chunk.slice(take.length)
      }
      if (chunk.length === 0) return
      tail += chunk
      if (tail.length > tailMax) {
        dropped += tail.length - tailMax
        tail = tail.slice(tail.length - tailMax)
      }
    },
    text: () => (dropped === 0 ? head + tail : `${head}\n… [${dropped} characters of output omitted] …\n${tail}`),
    truncated: () => dropped > 0
  }
}

interface Finished {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly timedOut: boolean
  readonly output: string
  readonly truncated: boolean
}

const killGroup = (pid: number | undefined, signal: NodeJS.Signals) => {
  if (pid === undefined) return
  try {
    process.kill(-pid, signal)
  } catch {
    // the group is already gone
  }
}

/**
 * Runs `bash -c command` in its own process group. On timeout the whole group gets SIGTERM, then
 * SIGKILL after a grace period; interruption kills it at once and waits until its pipes close.
 * Background processes the command leaves behind are killed when the shell exits.
 */
const runCommand = (command: string, cwd: string, timeoutMs: number) =>
  Effect.async<Finished, ToolFailure>((resume) => {
    const out = capture(MAX_OUTPUT_CHARS)
    const child = spawn("bash", ["-c", command], { cwd, env: commandEnv(), detached: true, stdio: ["ignore", "pipe", "pipe"] })
    let timedOut = false
    let exited = false
    let graceTimer: NodeJS.Timeout | undefined
    const onExit: Array<() => void> = []
    const terminate = () => {
      killGroup(child.pid, "SIGTERM")
      graceTimer = setTimeout(() => killGroup(child.pid, "SIGKILL"), KILL_GRACE_MS)
    }
    const timer = setTimeout(() => {
      timedOut = true
      terminate()
    }, timeoutMs)
    child.stdout.setEncoding("utf8").on("data", out.push)
    child.stderr.setEncoding("utf8").on("data", out.push)
    child.on("error", (e) => {
      clearTimeout(timer)
      resume(Effect.fail(new ToolFailure({ message: `cannot start bash: ${e.message}` })))
    })
    // Whatever the command left running in its group would keep the pipes open: end it with the shell.
    child.on("exit", () => killGroup(child.pid, "SIGKILL"))
    child.on("close", (code, signal) => {
      exited = true
      clearTimeout(timer)
      if (graceTimer !== undefined) clearTimeout(graceTimer)
      onExit.forEach((f) => f())
      resume(Effect.succeed({ code, signal, timedOut, output: out.text(), truncated: out.truncated() }))
    })
    return Effect.async<void>((done) => {
      clearTimeout(timer)
      if (exited) return done(Effect.void)
      onExit.push(() => done(Effect.void))
      killGroup(child.pid, "SIGKILL")
    })
  })

export const BashTool = defineTool({
  name: "bash",
  description:
    "Run a shell command with bash in the project workspace (its working directory). stdin is closed; stdout and stderr are " +
    `combined. Default timeout ${DEFAULT_TIMEOUT_SECONDS}s (at most ${MAX_TIMEOUT_SECONDS}s); on timeout the command and its children are killed. ` +
    `Long output keeps its beginning and end (${MAX_OUTPUT_CHARS} characters in all).`,
  parameters: Schema.Struct({
    command: described(Schema.String.pipe(Schema.minLength(1)), "The command line to run"),
    timeout: Schema.optional(
      described(Schema.Number.pipe(Schema.greaterThan(0), Schema.lessThanOrEqualTo(MAX_TIMEOUT_SECONDS)), "Timeout in seconds")
    ),
    description: Schema.optional(described(Schema.String, "A few words saying what the command does, shown to whoever approves it"))
  }),
  requiresScope: "execute",
  permission: (args) => Effect.succeed({ subject: args.command, kind: "command" as const, title: args.description ?? args.command }),
  run: (args, ctx) =>
    Effect.gen(function* () {
      const root = yield* resolveInWorkspace(ctx, ".")
      const timeoutSeconds = args.timeout ?? DEFAULT_TIMEOUT_SECONDS
      const r = yield* runCommand(args.command, root.absolute, timeoutSeconds * 1000)
      const metadata = { exitCode: r.code, signal: r.signal, truncated: r.truncated }
      if (r.timedOut) {
        return yield* new ToolFailure({ message: `command timed out after ${timeoutSeconds}s and was killed\n${r.output}`.trimEnd() })
      }
      const status = r.code === 0 ? "" : r.code === null ? `\n[killed by ${r.signal}]` : `\n[exit code ${r.code}]`
      return { output: (r.output.length === 0 ? "(no output)" : r.output) + status, metadata }
    })
})
