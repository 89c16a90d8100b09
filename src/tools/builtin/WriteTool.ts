import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { defineTool, described, fail } from "../Tool.js"
import { resolveInWorkspace } from "../Workspace.js"

export const WriteTool = defineTool({
  name: "write",
  description: "Write a file in the project workspace, replacing it if it exists. Missing parent directories are created.",
  parameters: Schema.Struct({
    path: described(Schema.String, "File path, relative to the workspace root"),
    content: described(Schema.String, "The complete new content of the file")
  }),
  permission: (args, ctx) =>
    Effect.map(resolveInWorkspace(ctx, args.path), (p) => ({ subject: p.relative, kind: "path" as const, title: `write ${p.relative}` })),
  run: (args, ctx) =>
    Effect.gen(function* () {
      const p = yield* resolveInWorkspace(ctx, args.path)
      const stat = yield* Effect.sync(() => fs.statSync(p.absolute, { throwIfNoEntry: false }))
      if (stat?.isDirectory()) return yield* fail(`${p.relative} is a directory`)
      yield* Effect.try({
        try: () => {
          fs.mkdirSync(path.dirname(p.absolute), { recursive: true })
          fs.writeFileSync(p.absolute, args.content)
        },
        catch: (e) => e
      }).pipe(Effect.catchAll((e) => fail(`cannot write ${p.relative}: ${e instanceof Error ? e.message : String(e)}`)))
      const bytes = Buffer.byteLength(args.content)
      return {
        output: `${stat === undefined ? "created" : "overwrote"} ${p.relative} (${bytes} bytes)`,
        metadata: { path: p.relative, bytes, created: stat === undefined }
      }
    })
})
