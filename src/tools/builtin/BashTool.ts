import { Effect, Schema } from "effect"
import { runProcess } from "../../runtime/ProcessRunner.js"
import { defineTool, described, ToolFailure } from "../Tool.js"
import { resolveInWorkspace } from "../Workspace.js"

const DEFAULT_TIMEOUT_SECONDS = 120
const MAX_TIMEOUT_SECONDS = 600
/** Output kept (bytes; characters for ASCII output): the first third and the last two thirds of this budget. */
export const MAX_OUTPUT_CHARS = 30_000
const KILL_GRACE_MS = 2000

/** Hub credentials and obvious secrets are not handed to commands the model writes. */
const commandEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("KIRIS_") && k !== "KIRO_SWARM_KEY" && !/(SECRET|TOKEN|PASSWORD|API_KEY)/i.test(k))
  )

/**
 * Runs `bash -c command` in its own process group (see ProcessRunner): stdout and stderr combined,
 * the first third and the last two thirds of the output budget kept. On timeout or interruption the
 * whole group gets SIGTERM, then SIGKILL after a grace period; background processes the command
 * leaves behind are killed when the shell exits.
 */
const runCommand = (command: string, cwd: string, timeoutMs: number) =>
  runProcess({
    command: "bash",
    args: ["-c", command],
    cwd,
    env: commandEnv(),
    timeoutMs,
    maxOutputBytes: MAX_OUTPUT_CHARS,
    headShare: 1 / 3,
    omittedNote: (n) => `[${n} characters of output omitted]`,
    combineOutput: true,
    killGroupOnExit: true,
    killGraceMs: KILL_GRACE_MS
  }).pipe(
    Effect.map((r) => ({ code: r.exitCode, signal: r.signal, timedOut: false, output: r.stdout, truncated: r.truncated })),
    Effect.catchTag("ProcessError", (e) =>
      e.reason === "timeout"
        ? Effect.succeed({ code: null, signal: null, timedOut: true, output: e.stdout, truncated: false })
        : Effect.fail(new ToolFailure({ message: `cannot start bash: ${e.message}` }))
    )
  )

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
