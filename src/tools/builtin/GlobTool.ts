import { Effect, Schema, Stream } from "effect"
import { globMatcher } from "../../glob/Glob.js"
import { defineTool, described, fail } from "../Tool.js"
import { statOrUndefined, takeUpTo, walk } from "../Walk.js"
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
      const stat = yield* statOrUndefined(p.absolute)
      if (stat === undefined || !stat.isDirectory()) return yield* fail(`not a directory: ${p.relative}`)
      const matches = globMatcher(args.pattern.replace(/^\.\//, ""))
      const prefix = p.relative === "." ? "" : `${p.relative}/`
      const { items, truncated } = yield* takeUpTo(
        walk(p.absolute, 64, ctx.fence).pipe(
          Stream.filter((e) => !e.isDir && matches(e.rel)),
          Stream.map((e) => prefix + e.rel)
        ),
        MAX_RESULTS
      )
      if (items.length === 0) return { output: "no files matched", metadata: { count: 0 } }
      const note = truncated ? [`(results cut at ${MAX_RESULTS}; narrow the pattern)`] : []
      return { output: [...items, ...note].join("\n"), metadata: { count: items.length, truncated } }
    })
})
