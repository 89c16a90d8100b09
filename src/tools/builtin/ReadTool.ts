import { Effect, Option, Schema } from "effect"
import * as fs from "node:fs"
import { FileService } from "../../files/FileService.js"
import { fileFailure } from "../../files/ToolFiles.js"
import { defineTool, described, fail, failureOf } from "../Tool.js"
import { looksBinary } from "../Walk.js"
import { resolveInWorkspace } from "../Workspace.js"

const DEFAULT_LIMIT = 2000
const MAX_LINE_CHARS = 2000
const MAX_OUTPUT_CHARS = 50_000
const MAX_FILE_BYTES = 20 * 1024 * 1024

export const ReadTool = defineTool({
  name: "read",
  description:
    "Read a text file from the project workspace. Lines are numbered (1-based, `number<TAB>text`). " +
    `Reads up to ${DEFAULT_LIMIT} lines from \`offset\`; long output is cut with a note saying where to continue. Binary files are refused.`,
  parameters: Schema.Struct({
    path: described(Schema.String, "File path, relative to the workspace root"),
    offset: Schema.optional(described(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)), "First line to read, 1-based (default 1)")),
    limit: Schema.optional(described(Schema.Int.pipe(Schema.between(1, 100_000)), `Maximum number of lines (default ${DEFAULT_LIMIT})`))
  }),
  permission: (args, ctx) =>
    Effect.map(resolveInWorkspace(ctx, args.path), (p) => ({ subject: p.relative, kind: "path" as const, title: `read ${p.relative}` })),
  run: (args, ctx) =>
    Effect.gen(function* () {
      const p = yield* resolveInWorkspace(ctx, args.path)
      const stat = yield* Effect.sync(() => fs.statSync(p.absolute, { throwIfNoEntry: false }))
      if (stat === undefined) return yield* fail(`file not found: ${p.relative}`)
      if (stat.isDirectory()) return yield* fail(`${p.relative} is a directory; use the list tool`)
      if (stat.size > MAX_FILE_BYTES) return yield* fail(`${p.relative} is too large to read (${stat.size} bytes)`)
      // In the hub, FileService notices (and records) changes made behind its back.
      const files = yield* Effect.serviceOption(FileService)
      const buf = Option.isSome(files)
        ? yield* files.value.read({ workspace: ctx.workspace, path: p.relative }).pipe(
            Effect.mapError(fileFailure),
            Effect.map(({ content }) => Buffer.from(content.buffer, content.byteOffset, content.byteLength))
          )
        : yield* Effect.try({ try: () => fs.readFileSync(p.absolute), catch: failureOf(`cannot read ${p.relative}`) })
      if (looksBinary(buf)) return yield* fail(`${p.relative} is a binary file; read refuses binary content`)
      const text = buf.toString("utf8")
      if (text.length === 0) return { output: `(${p.relative} is empty)`, metadata: { path: p.relative, lines: 0 } }
      const lines = text.split(/\r?\n/)
      if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop()
      const start = (args.offset ?? 1) - 1
      if (start >= lines.length) return yield* fail(`offset ${start + 1} is past the end of ${p.relative} (${lines.length} lines)`)
      const end = Math.min(lines.length, start + (args.limit ?? DEFAULT_LIMIT))
      const out: Array<string> = []
      let size = 0
      let last = start
      for (let i = start; i < end; i++) {
        const raw = lines[i]!
        const line = `${String(i + 1).padStart(6)}\t${raw.length > MAX_LINE_CHARS ? `${raw.slice(0, MAX_LINE_CHARS)}… (line cut)` : raw}`
        if (size + line.length + 1 > MAX_OUTPUT_CHARS && out.length > 0) break
        out.push(line)
        size += line.length + 1
        last = i + 1
      }
      if (last < lines.length) {
        const why = last < end ? `output truncated at ${MAX_OUTPUT_CHARS} characters` : "more lines follow"
        out.push(`(${why}: showed lines ${start + 1}-${last} of ${lines.length}; use offset=${last + 1} to continue)`)
      }
      return { output: out.join("\n"), metadata: { path: p.relative, lines: lines.length, from: start + 1, to: last } }
    })
})
