import { Effect, Schema, Stream } from "effect"
import { defineTool, described, fail } from "../Tool.js"
import { statOrUndefined, takeUpTo, walk } from "../Walk.js"
import { resolveInWorkspace } from "../Workspace.js"

const MAX_ENTRIES = 1000

export const ListTool = defineTool({
  name: "list",
  description:
    "List a directory of the project workspace (default: its root), one entry per line, directories ending in `/` and symlinks in `@`. " +
    "`.git` and `node_modules` are skipped. `depth` > 1 lists subdirectories too.",
  parameters: Schema.Struct({
    path: Schema.optional(described(Schema.String, "Directory, relative to the workspace root (default `.`)")),
    depth: Schema.optional(described(Schema.Int.pipe(Schema.between(1, 10)), "How many levels to list (default 1)"))
  }),
  permission: (args, ctx) =>
    Effect.map(resolveInWorkspace(ctx, args.path ?? "."), (p) => ({ subject: p.relative, kind: "path" as const, title: `list ${p.relative}` })),
  run: (args, ctx) =>
    Effect.gen(function* () {
      const p = yield* resolveInWorkspace(ctx, args.path ?? ".")
      const stat = yield* statOrUndefined(p.absolute)
      if (stat === undefined) return yield* fail(`directory not found: ${p.relative}`)
      if (!stat.isDirectory()) return yield* fail(`${p.relative} is not a directory`)
      const { items, truncated } = yield* takeUpTo(
        Stream.map(walk(p.absolute, args.depth ?? 1, ctx.fence), (e) => e.rel + (e.isDir ? "/" : e.isSymlink ? "@" : "")),
        MAX_ENTRIES
      )
      if (items.length === 0) return { output: `(${p.relative} is empty)`, metadata: { entries: 0 } }
      const note = truncated ? [`(listing cut at ${MAX_ENTRIES} entries; list a subdirectory or lower the depth)`] : []
      return { output: [...items, ...note].join("\n"), metadata: { entries: items.length, truncated } }
    })
})
