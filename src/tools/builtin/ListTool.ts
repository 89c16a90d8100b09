import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import { defineTool, described, fail } from "../Tool.js"
import { walk } from "../Walk.js"
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
      const stat = yield* Effect.sync(() => fs.statSync(p.absolute, { throwIfNoEntry: false }))
      if (stat === undefined) return yield* fail(`directory not found: ${p.relative}`)
      if (!stat.isDirectory()) return yield* fail(`${p.relative} is not a directory`)
      const lines: Array<string> = []
      let truncated = false
      yield* Effect.sync(() =>
        walk(p.absolute, args.depth ?? 1, ctx.fence, (e) => {
          if (lines.length >= MAX_ENTRIES) {
            truncated = true
            return false
          }
          lines.push(e.rel + (e.isDir ? "/" : e.isSymlink ? "@" : ""))
          return true
        })
      )
      if (lines.length === 0) return { output: `(${p.relative} is empty)`, metadata: { entries: 0 } }
      if (truncated) lines.push(`(listing cut at ${MAX_ENTRIES} entries; list a subdirectory or lower the depth)`)
      return { output: lines.join("\n"), metadata: { entries: lines.length - (truncated ? 1 : 0), truncated } }
    })
})
