import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import { globToRegExp } from "../GlobPattern.js"
import { defineTool, described, fail } from "../Tool.js"
import { looksBinary, walk } from "../Walk.js"
import { resolveInWorkspace } from "../Workspace.js"

const MAX_MATCHES = 200
const MAX_FILE_BYTES = 5 * 1024 * 1024
const MAX_LINE_CHARS = 500

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
      const include = args.include === undefined ? undefined : globToRegExp(args.include)
      const includeByName = args.include !== undefined && !args.include.includes("/")
      const stat = yield* Effect.sync(() => fs.statSync(p.absolute, { throwIfNoEntry: false }))
      if (stat === undefined) return yield* fail(`not found: ${p.relative}`)
      const prefix = p.relative === "." ? "" : `${p.relative}/`
      const matches: Array<string> = []
      let truncated = false
      const searchFile = (abs: string, shown: string): boolean => {
        let buf: Buffer
        try {
          if (fs.statSync(abs).size > MAX_FILE_BYTES) return true
          buf = fs.readFileSync(abs)
        } catch {
          return true
        }
        if (looksBinary(buf)) return true
        const lines = buf.toString("utf8").split(/\r?\n/)
        for (let i = 0; i < lines.length; i++) {
          const line = lines[i]!
          if (!re.test(line)) continue
          if (matches.length >= MAX_MATCHES) {
            truncated = true
            return false
          }
          matches.push(`${shown}:${i + 1}:${line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line}`)
        }
        return true
      }
      yield* Effect.sync(() => {
        if (!stat.isDirectory()) return searchFile(p.absolute, p.relative)
        walk(p.absolute, 64, ctx.fence, (e) => {
          if (e.isDir || e.isSymlink) return true
          if (include !== undefined && !include.test(includeByName ? (e.rel.split("/").pop() ?? e.rel) : e.rel)) return true
          return searchFile(e.abs, prefix + e.rel)
        })
      })
      if (matches.length === 0) return { output: "no matches", metadata: { count: 0 } }
      const note = truncated ? [`(stopped after ${MAX_MATCHES} matches; narrow the pattern or path)`] : []
      return { output: [...matches, ...note].join("\n"), metadata: { count: matches.length, truncated } }
    })
})
