import { Effect, Option, Schema } from "effect"
import * as fs from "node:fs"
import { FileService } from "../../files/FileService.js"
import { fileFailure, sessionAuthor } from "../../files/ToolFiles.js"
import { defineTool, described, fail, failureOf } from "../Tool.js"
import { looksBinary } from "../Walk.js"
import { resolveInWorkspace } from "../Workspace.js"

const countOccurrences = (text: string, needle: string) => {
  let n = 0
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) n++
  return n
}

/** Replaces text in a file; in the hub, reads and writes go through FileService (see WriteTool). */
export const EditTool = defineTool({
  name: "edit",
  description:
    "Replace an exact string in a file. `oldString` must occur exactly once (include enough surrounding lines to make it unique), " +
    "unless `replaceAll` is true. Whitespace and indentation must match the file exactly.",
  parameters: Schema.Struct({
    path: described(Schema.String, "File path, relative to the workspace root"),
    oldString: described(Schema.String.pipe(Schema.minLength(1)), "The exact text to replace"),
    newString: described(Schema.String, "The text to put in its place"),
    replaceAll: Schema.optional(described(Schema.Boolean, "Replace every occurrence instead of requiring exactly one"))
  }),
  permission: (args, ctx) =>
    Effect.map(resolveInWorkspace(ctx, args.path), (p) => ({ subject: p.relative, kind: "path" as const, title: `edit ${p.relative}` })),
  run: (args, ctx) =>
    Effect.gen(function* () {
      const p = yield* resolveInWorkspace(ctx, args.path)
      if (args.oldString === args.newString) return yield* fail("oldString and newString are identical; nothing to change")
      const stat = yield* Effect.sync(() => fs.statSync(p.absolute, { throwIfNoEntry: false }))
      if (stat === undefined) return yield* fail(`file not found: ${p.relative}`)
      if (stat.isDirectory()) return yield* fail(`${p.relative} is a directory`)
      const files = yield* Effect.serviceOption(FileService)
      const current = Option.isSome(files)
        ? yield* files.value.read({ workspace: ctx.workspace, path: p.relative }).pipe(Effect.mapError(fileFailure))
        : { version: null, content: yield* Effect.sync((): Uint8Array => fs.readFileSync(p.absolute)) }
      const buf = Buffer.from(current.content.buffer, current.content.byteOffset, current.content.byteLength)
      if (looksBinary(buf)) return yield* fail(`${p.relative} is a binary file`)
      const text = buf.toString("utf8")
      const count = countOccurrences(text, args.oldString)
      if (count === 0) return yield* fail(`oldString was not found in ${p.relative}; re-read the file and copy the text exactly`)
      if (count > 1 && args.replaceAll !== true) {
        return yield* fail(
          `oldString occurs ${count} times in ${p.relative}; include more surrounding context to match exactly one, or set replaceAll`
        )
      }
      const next = text.split(args.oldString).join(args.newString)
      if (Option.isSome(files)) {
        // The write fails Conflict if the file changed after it was read above.
        const version = yield* files.value
          .write({
            workspace: ctx.workspace,
            path: p.relative,
            content: Buffer.from(next, "utf8"),
            author: sessionAuthor(ctx),
            ...(current.version === null ? {} : { expectedVersion: current.version.id })
          })
          .pipe(Effect.mapError(fileFailure))
        return {
          output: `replaced ${count} occurrence${count === 1 ? "" : "s"} in ${p.relative}`,
          metadata: { path: p.relative, replacements: count, version: version.id }
        }
      }
      yield* Effect.try({ try: () => fs.writeFileSync(p.absolute, next), catch: failureOf(`cannot write ${p.relative}`) })
      return {
        output: `replaced ${count} occurrence${count === 1 ? "" : "s"} in ${p.relative}`,
        metadata: { path: p.relative, replacements: count }
      }
    })
})
