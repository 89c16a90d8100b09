import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import { globToRegExp } from "../GlobPattern.js"
import { defineTool, described, fail } from "../Tool.js"
import { walk } from "../Walk.js"
import { resolveInWorkspace } from "../Workspace.js"

const MAX_RESULTS = 1000

export const GlobTool = defineTool({
  name: "glob",
  description:
    "Find files by glob pattern, relative to `path` (default the workspace root). `*` and `?` stay within one directory level, " +
    "`**` crosses levels (`**/*.ts` finds every .ts file), `{a,b}` alternates. Returns workspace-relative paths, sorted. " +
    "`.git` and `node_modules` are skipped.",
  parameters: Schema.Struct({
    pattern: described(Schema.String.pipe(Schema.minLength(1)), "Glob pattern, e.g. `src/**/*.ts`"),
    path: Schema.optional(described(Schema.String, "Directory to search from, relative to the workspace root (default `.`)"))
  }),
  permission: (args, ctx) =>
    Effect.map(resolveInWorkspace(ctx, args.path ?? "."), (p) => ({
      subject: p.relative,
      kind: "path" as const,
      title: `glob ${args.pattern} in ${p.relative}`
    })),
  run: (args, ctx) =>
    Effect.gen(function* () {
      const p = yield* resolveInWorkspace(ctx, args.path ?? ".")
      const stat = yield* Effect.sync(() => fs.statSync(p.absolute, { throwIfNoEntry: false }))
      if (stat === undefined || !stat.isDirectory()) return yield* fail(`not a directory: ${p.relative}`)
      const re = globToRegExp(args.pattern.replace(/^\.\//, ""))
      const prefix = p.relative === "." ? "" : `${p.relative}/`
      const found: Array<string> = []
      let truncated = false
      yield* Effect.sync(() =>
        walk(p.absolute, 64, ctx.fence, (e) => {
          if (e.isDir || !re.test(e.rel)) return true
          if (found.length >= MAX_RESULTS) {
            truncated = true
            return false
          }
          found.push(prefix + e.rel)
          return true
        })
      )
      if (found.length === 0) return { output: "no files matched", metadata: { count: 0 } }
      const note = truncated ? [`(results cut at ${MAX_RESULTS}; narrow the pattern)`] : []
      return { output: [...found, ...note].join("\n"), metadata: { count: found.length, truncated } }
    })
})
