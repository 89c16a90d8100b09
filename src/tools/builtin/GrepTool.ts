import { Effect, Schema, Stream } from "effect"
import * as fs from "node:fs"
import { globMatcher } from "../../glob/Glob.js"
import { defineTool, described, fail } from "../Tool.js"
import { looksBinary, READ_CONCURRENCY, statOrUndefined, takeUpTo, walk } from "../Walk.js"
import { resolveInWorkspace } from "../Workspace.js"

const MAX_MATCHES = 200
const MAX_FILE_BYTES = 5 * 1024 * 1024
const MAX_LINE_CHARS = 500

/** A file's matching lines as `shown:line:text`, at most `limit`; unreadable, oversized and binary files have none. */
const searchFile = (re: RegExp, abs: string, shown: string, limit: number): Effect.Effect<ReadonlyArray<string>> =>
  Effect.tryPromise(async (signal) => {
    if ((await fs.promises.stat(abs)).size > MAX_FILE_BYTES) return []
    const buf = await fs.promises.readFile(abs, { signal })
    if (looksBinary(buf)) return []
    const found: Array<string> = []
    const lines = buf.toString("utf8").split(/\r?\n/)
    for (let i = 0; i < lines.length && found.length < limit; i++) {
      const line = lines[i]!
      if (re.test(line)) found.push(`${shown}:${i + 1}:${line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line}`)
    }
    return found
  }).pipe(Effect.orElseSucceed((): ReadonlyArray<string> => []))

export const GrepTool = defineTool({
  name: "grep",
  description:
    "Search file contents with a JavaScript regular expression. Output lines are `path:line:text` (workspace-relative paths). " +
    `At most ${MAX_MATCHES} matches; binary files, .git and node_modules are skipped.`,
  parameters: Schema.Struct({
    pattern: described(Schema.String.pipe(Schema.minLength(1)), "Regular expression (JavaScript syntax)"),
    path: Schema.optional(described(Schema.String, "File or directory to search, relative to the workspace root (default `.`)")),
    include: Schema.optional(described(Schema.String, "Only files matching this glob, e.g. `*.ts` (matched on the file name) or `src/**/*.ts`")),
    ignoreCase: Schema.optional(described(Schema.Boolean, "Case-insensitive matching"))
  }),
  permission: (args, ctx) =>
    Effect.map(resolveInWorkspace(ctx, args.path ?? "."), (p) => ({
      subject: p.relative,
      kind: "path" as const,
      title: `grep ${args.pattern} in ${p.relative}`
    })),
  run: (args, ctx) =>
    Effect.gen(function* () {
      const p = yield* resolveInWorkspace(ctx, args.path ?? ".")
      const re = yield* Effect.try(() => new RegExp(args.pattern, args.ignoreCase === true ? "i" : "")).pipe(
        Effect.catchAll((e) => fail(`invalid regular expression: ${e.error instanceof Error ? e.error.message : String(e.error)}`))
      )
      const include = args.include === undefined ? undefined : globMatcher(args.include)
      const includeByName = args.include !== undefined && !args.include.includes("/")
      const included = (rel: string) => include === undefined || include(includeByName ? (rel.split("/").pop() ?? rel) : rel)
      const stat = yield* statOrUndefined(p.absolute)
      if (stat === undefined) return yield* fail(`not found: ${p.relative}`)
      const prefix = p.relative === "." ? "" : `${p.relative}/`
      // Only regular files are read: a FIFO or device would block the read forever.
      const files: Stream.Stream<readonly [abs: string, shown: string]> = stat.isDirectory()
        ? walk(p.absolute, 64, ctx.fence).pipe(
            Stream.filter((e) => e.isFile && included(e.rel)),
            Stream.map((e) => [e.abs, prefix + e.rel] as const)
          )
        : stat.isFile()
          ? Stream.succeed([p.absolute, p.relative] as const)
          : Stream.empty
      const { items: matches, truncated } = yield* takeUpTo(
        files.pipe(
          Stream.mapEffect(([abs, shown]) => searchFile(re, abs, shown, MAX_MATCHES + 1), { concurrency: READ_CONCURRENCY }),
          Stream.flattenIterables
        ),
        MAX_MATCHES
      )
      if (matches.length === 0) return { output: "no matches", metadata: { count: 0 } }
      const note = truncated ? [`(stopped after ${MAX_MATCHES} matches; narrow the pattern or path)`] : []
      return { output: [...matches, ...note].join("\n"), metadata: { count: matches.length, truncated } }
    })
})
