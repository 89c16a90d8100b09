import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { FileAuthor, FileEntry, FileVersion } from "../domain/File.js"
import type { MessageId, SessionId } from "../domain/Ids.js"
import { decodeContent, encodeContent } from "../domain/rpc/FileRpcs.js"
import { CliError, clientOptions, output, outputOptions, withClient } from "./ClientOptions.js"
import { resolveProject } from "./SwarmShared.js"
import { formatTable, formatTime } from "./Table.js"

/**
 * `kiris files …` (the project's versioned workspace files) and `kiris revert` (undo a session's
 * file changes), over the hub's RPC protocol. Content travels base64-encoded in one RPC frame, so
 * a file must fit the hub's `maxFrameBytes` (about 3/4 of it) as well as its `fileMaxBytes`;
 * larger files go through `PUT /api/projects/{id}/files/{path}`.
 */

const projectOption = Options.text("project").pipe(
  Options.withPseudoName("PROJECT"),
  Options.withDescription('Project name or id (default: the project named "default")'),
  Options.optional
)

const common = { ...clientOptions, ...outputOptions, project: projectOption }

// `--version` is the CLI's own flag (it prints the program's version), so a file version is `--at`.
const versionOption = Options.integer("at").pipe(
  Options.withPseudoName("VERSION"),
  Options.withDescription("A recorded version number (see `kiris files history`); default: the file as it is now"),
  Options.optional
)

const authorText = (a: FileAuthor): string => {
  switch (a.kind) {
    case "user":
      return `user ${a.userId}`
    case "session":
      return `session ${a.sessionId}`
    case "external":
      return "external edit"
    case "revert":
      return `revert by ${authorText(a.by)}`
  }
}

const entryTable = (entries: ReadonlyArray<FileEntry>) =>
  formatTable(entries, [
    { header: "name", value: (e) => (e.type === "dir" ? `${e.name}/` : e.name) },
    { header: "size", value: (e) => (e.type === "dir" ? "-" : String(e.size)) },
    { header: "version", value: (e) => (e.latestVersion === null ? "-" : String(e.latestVersion)) }
  ])

const versionTable = (versions: ReadonlyArray<FileVersion>) =>
  formatTable(versions, [
    { header: "version", value: (v) => String(v.id) },
    { header: "when", value: (v) => formatTime(v.createdAt) },
    { header: "size", value: (v) => (v.deleted ? "deleted" : String(v.size)) },
    { header: "author", value: (v) => authorText(v.author) },
    { header: "hash", value: (v) => (v.hash === null ? "-" : v.hash.slice(0, 12)) }
  ])

/** Writes raw bytes to stdout and waits until they are handed to the OS. */
const writeStdout = (bytes: Uint8Array) =>
  Effect.async<void>((resume) => {
    process.stdout.write(bytes, () => resume(Effect.void))
  })

const readLocal = (file: string) =>
  Effect.try({
    try: () => new Uint8Array(fs.readFileSync(file)),
    catch: (e) => new CliError({ message: `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}` })
  })

const writeLocal = (file: string, bytes: Uint8Array) =>
  Effect.try({
    try: () => fs.writeFileSync(file, bytes),
    catch: (e) => new CliError({ message: `cannot write ${file}: ${e instanceof Error ? e.message : String(e)}` })
  })

const remoteArg = (name: string) => Args.text({ name }).pipe(Args.withDescription("Path in the project's workspace, relative to its root"))

const ls = Command.make(
  "ls",
  { ...common, dir: Args.text({ name: "dir" }).pipe(Args.withDescription("Directory in the workspace (default: its root)"), Args.optional) },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const projectId = yield* resolveProject(client, o.project, false)
        const entries = yield* client.file.list({ projectId, ...(Option.isSome(o.dir) ? { dir: o.dir.value } : {}) })
        yield* output(o.json, entries, () => (entries.length === 0 ? "(empty)" : entryTable(entries)))
      })
    )
).pipe(Command.withDescription("List a workspace directory: names, sizes and latest recorded versions"))

const cat = Command.make("cat", { ...common, path: remoteArg("path"), version: versionOption }, (o) =>
  withClient(o, (client) =>
    Effect.gen(function* () {
      const projectId = yield* resolveProject(client, o.project, false)
      const read = yield* client.file.read({
        projectId,
        path: o.path,
        encoding: "base64",
        ...(Option.isSome(o.version) ? { version: o.version.value } : {})
      })
      const bytes = decodeContent(read.content, read.encoding) ?? new Uint8Array()
      if (o.json) return yield* output(true, { ...read, ...encodeContent(bytes) }, () => "")
      yield* writeStdout(bytes)
    })
  )
).pipe(Command.withDescription("Print a workspace file (now, or at --at VERSION) byte for byte"))

const history = Command.make(
  "history",
  {
    ...common,
    path: remoteArg("path"),
    limit: Options.integer("limit").pipe(Options.withPseudoName("N"), Options.withDescription("Versions per page (1-500)"), Options.withDefault(20)),
    cursor: Options.integer("cursor").pipe(
      Options.withPseudoName("C"),
      Options.withDescription("Start after this point (printed under a full page)"),
      Options.optional
    )
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const projectId = yield* resolveProject(client, o.project, false)
        const page = yield* client.file.history({
          projectId,
          path: o.path,
          limit: o.limit,
          ...(Option.isSome(o.cursor) ? { cursor: o.cursor.value } : {})
        })
        yield* output(o.json, page, () =>
          page.versions.length === 0
            ? `no recorded versions of ${o.path}`
            : versionTable(page.versions) + (page.next === null ? "" : `\n\nolder versions: --cursor ${page.next}`)
        )
      })
    )
).pipe(Command.withDescription("List a file's recorded versions, newest first, with who wrote each"))

const diff = Command.make(
  "diff",
  {
    ...common,
    path: remoteArg("path"),
    from: Args.integer({ name: "from" }).pipe(Args.withDescription("Older version")),
    to: Args.integer({ name: "to" }).pipe(Args.withDescription("Newer version"))
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const projectId = yield* resolveProject(client, o.project, false)
        const d = yield* client.file.diff({ projectId, path: o.path, from: o.from, to: o.to })
        yield* output(o.json, d, () =>
          d.binary
            ? `binary file ${d.path}: versions ${d.from} and ${d.to} differ`
            : d.unified === ""
              ? `no changes between ${d.from} and ${d.to}`
              : d.unified.replace(/\n$/, "")
        )
      })
    )
).pipe(Command.withDescription("Show a unified diff between two recorded versions of a file"))

const upload = Command.make(
  "upload",
  {
    ...common,
    local: Args.file({ name: "local", exists: "yes" }).pipe(Args.withDescription("File on this machine")),
    remote: Args.text({ name: "remote" }).pipe(Args.withDescription("Path in the workspace (default: the local file's name)"), Args.optional)
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const projectId = yield* resolveProject(client, o.project, false)
        const bytes = yield* readLocal(o.local)
        const remote = Option.getOrElse(o.remote, () => path.basename(o.local))
        const version = yield* client.file.write({ projectId, path: remote, ...encodeContent(bytes) }).pipe(
          Effect.catchAllDefect((defect) => {
            const text = defect instanceof Error ? defect.message : String(defect)
            return /frame too large/.test(text)
              ? Effect.fail(
                  new CliError({
                    message: `${o.local} is too large to send over RPC (${text}); upload it with PUT /api/projects/${projectId}/files/${remote} on the hub's HTTP port`
                  })
                )
              : Effect.die(defect)
          })
        )
        yield* output(o.json, version, () => `uploaded ${o.local} to ${version.path} (version ${version.id}, ${version.size} bytes)`)
      })
    )
).pipe(Command.withDescription("Upload a local file into the workspace as a new recorded version"))

const download = Command.make(
  "download",
  {
    ...common,
    remote: remoteArg("remote"),
    local: Args.text({ name: "local" }).pipe(Args.withDescription("Where to write it (default: its name, in the current directory)"), Args.optional),
    version: versionOption
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const projectId = yield* resolveProject(client, o.project, false)
        const read = yield* client.file.read({
          projectId,
          path: o.remote,
          encoding: "base64",
          ...(Option.isSome(o.version) ? { version: o.version.value } : {})
        })
        const bytes = decodeContent(read.content, read.encoding) ?? new Uint8Array()
        const local = Option.getOrElse(o.local, () => path.basename(read.path))
        yield* writeLocal(local, bytes)
        const version = read.version === null ? "unrecorded" : `version ${read.version.id}`
        yield* output(
          o.json,
          { path: read.path, local, size: bytes.byteLength, version: read.version?.id ?? null },
          () => `downloaded ${read.path} (${version}, ${bytes.byteLength} bytes) to ${local}`
        )
      })
    )
).pipe(Command.withDescription("Download a workspace file (now, or at --at VERSION) to a local file"))

export const filesCommand = Command.make("files").pipe(
  Command.withDescription("Browse and move a project's versioned workspace files: ls, cat, history, diff, upload, download"),
  Command.withSubcommands([ls, cat, history, diff, upload, download])
)

export const revertCommand = Command.make(
  "revert",
  {
    ...common,
    session: Args.text({ name: "session" }).pipe(Args.withDescription("Session id (ses_…)")),
    to: Options.text("to").pipe(
      Options.withPseudoName("MESSAGE"),
      Options.withDescription("Undo only the changes of this message and the ones after it (default: all of the session's changes)"),
      Options.optional
    ),
    force: Options.boolean("force").pipe(Options.withDescription("Overwrite files changed by someone else since the session wrote them"))
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const projectId = yield* resolveProject(client, o.project, false)
        const result = yield* client.session
          .revert({
            projectId,
            sessionId: o.session as SessionId,
            ...(Option.isSome(o.to) ? { toMessageId: o.to.value as MessageId } : {}),
            ...(o.force ? { force: true } : {})
          })
          .pipe(
            Effect.catchTag("RevertConflict", (e) =>
              Effect.fail(
                new CliError({
                  message:
                    `not reverted: ${e.paths.length === 1 ? "this file was" : "these files were"} changed by someone else since the session wrote ${e.paths.length === 1 ? "it" : "them"}:\n` +
                    e.paths.map((p) => `  ${p}`).join("\n") +
                    "\nrun again with --force to overwrite them"
                })
              )
            )
          )
        yield* output(o.json, result, () =>
          result.restored.length === 0
            ? "nothing to revert"
            : `reverted ${result.restored.length} file${result.restored.length === 1 ? "" : "s"}:\n` +
              result.restored.map((p) => `  ${p}`).join("\n") +
              `\nsnapshot ${result.snapshotId} holds the files as they were before the revert`
        )
      })
    )
).pipe(Command.withDescription("Undo the workspace file changes a session's agent made (all of them, or from --to MESSAGE on)"))
