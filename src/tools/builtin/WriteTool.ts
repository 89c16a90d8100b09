import { Effect, Option, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { FileService } from "../../files/FileService.js"
import { fileFailure, sessionAuthor } from "../../files/ToolFiles.js"
import { defineTool, described, fail, failureOf } from "../Tool.js"
import { resolveInWorkspace } from "../Workspace.js"

/**
 * Writes a file. In the hub the write goes through FileService (a version authored by the turn,
 * the turn's edit lock on the path, a `FileLocked` failure naming the holder when another turn has
 * it); where there is none (a worker's workdir) it writes the file directly.
 */
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
      const bytes = Buffer.byteLength(args.content)
      const files = yield* Effect.serviceOption(FileService)
      if (Option.isSome(files)) {
        const version = yield* files.value
          .write({ workspace: ctx.workspace, path: p.relative, content: Buffer.from(args.content, "utf8"), author: sessionAuthor(ctx) })
          .pipe(Effect.mapError(fileFailure))
        return {
          output: `${stat === undefined ? "created" : "overwrote"} ${p.relative} (${bytes} bytes)`,
          metadata: { path: p.relative, bytes, created: stat === undefined, version: version.id }
        }
      }
      yield* Effect.try({
        try: () => {
          fs.mkdirSync(path.dirname(p.absolute), { recursive: true })
          fs.writeFileSync(p.absolute, args.content)
        },
        catch: failureOf(`cannot write ${p.relative}`)
      })
      return {
        output: `${stat === undefined ? "created" : "overwrote"} ${p.relative} (${bytes} bytes)`,
        metadata: { path: p.relative, bytes, created: stat === undefined }
      }
    })
})
