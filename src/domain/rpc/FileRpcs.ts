import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { Conflict, Forbidden, InvalidInput, NotFound, WorkspaceUnreachable } from "../Errors.js"
import {
  FileDiff,
  FileEntry,
  FileHistoryPage,
  FileLock,
  FileLocked,
  FileSnapshot,
  FileTooLarge,
  FileVersion,
  PathRefused,
  QuotaExceeded,
  RevertConflict,
  RevertResult
} from "../File.js"
import { ProjectId } from "../Ids.js"
import { AuthMiddleware } from "./Middleware.js"

const viewer = Access.project("viewer", "read")
const member = Access.project("member", "write")

/** How file content travels in an RPC: UTF-8 text as is, anything else as base64. */
export const FileEncoding = Schema.Literal("utf8", "base64")
export type FileEncoding = typeof FileEncoding.Type

/** A path relative to the workspace root (`a/b.txt`); `..`, absolute paths and NUL are refused. */
const FilePath = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(4096))

const VersionNumber = Schema.Int.pipe(Schema.positive())

/**
 * A file's content at one version. `encoding` says how `content` is written: `utf8` when the bytes
 * are valid UTF-8 without NUL bytes (text), else `base64`; a reader asking for `base64` always gets
 * base64. `version` is null for a file on disk with no recorded version yet.
 */
export class FileContent extends Schema.Class<FileContent>("FileContent")({
  path: Schema.String,
  version: Schema.NullOr(FileVersion),
  size: Schema.Number,
  encoding: FileEncoding,
  content: Schema.String
}) {}

export class WriteFile extends Schema.Class<WriteFile>("WriteFile")({
  projectId: ProjectId,
  path: FilePath,
  content: Schema.String,
  /** How `content` is written; default `utf8`. */
  encoding: Schema.optional(FileEncoding),
  /** Refuse the write (Conflict) unless the path's latest version is this one (0: the path has none). */
  expectedVersion: Schema.optional(Schema.Int.pipe(Schema.nonNegative()))
}) {}

/** A workspace this hub cannot reach (hubs sharing a database need the same filesystem) refuses what needs the files. */
const Refusals = [NotFound, Forbidden, PathRefused, WorkspaceUnreachable] as const

/**
 * The project's versioned workspace files. Viewers list, read, page through history, diff, and
 * see snapshots and edit locks; members write, take snapshots and restore them. Every path is
 * relative to the workspace root and confined to it (the transport and the file service both check).
 * Writes are recorded with the calling user as their author.
 */
export class FileRpcs extends RpcGroup.make(
  Rpc.make("list", {
    payload: { projectId: ProjectId, dir: Schema.optional(Schema.String) },
    success: Schema.Array(FileEntry),
    error: Schema.Union(...Refusals)
  }).annotate(Requires, viewer),
  Rpc.make("read", {
    payload: {
      projectId: ProjectId,
      path: FilePath,
      /** A recorded version (default: the file as it is now). */
      version: Schema.optional(VersionNumber),
      /** `base64` forces base64 content; default: text when the bytes are UTF-8 text. */
      encoding: Schema.optional(FileEncoding)
    },
    success: FileContent,
    error: Schema.Union(...Refusals)
  }).annotate(Requires, viewer),
  Rpc.make("write", {
    payload: WriteFile,
    success: FileVersion,
    error: Schema.Union(...Refusals, InvalidInput, Conflict, FileLocked, FileTooLarge, QuotaExceeded)
  }).annotate(Requires, member),
  /** Newest first; pass `next` back as `cursor` for the following (older) page. */
  Rpc.make("history", {
    payload: {
      projectId: ProjectId,
      path: FilePath,
      cursor: Schema.optional(Schema.Int),
      /** 1 to 500, default 50. */
      limit: Schema.optional(Schema.Int.pipe(Schema.between(1, 500)))
    },
    success: FileHistoryPage,
    error: Schema.Union(...Refusals)
  }).annotate(Requires, viewer),
  Rpc.make("diff", {
    payload: { projectId: ProjectId, path: FilePath, from: VersionNumber, to: VersionNumber },
    success: FileDiff,
    error: Schema.Union(...Refusals)
  }).annotate(Requires, viewer),
  Rpc.make("snapshot", {
    payload: { projectId: ProjectId, label: Schema.String.pipe(Schema.maxLength(200)) },
    success: FileSnapshot,
    error: Schema.Union(...Refusals)
  }).annotate(Requires, member),
  Rpc.make("snapshots", {
    payload: { projectId: ProjectId },
    success: Schema.Array(FileSnapshot),
    error: Schema.Union(...Refusals)
  }).annotate(Requires, viewer),
  /** Brings the workspace back to a snapshot; paths changed since by someone else need `force`. */
  Rpc.make("restore", {
    payload: { projectId: ProjectId, snapshotId: Schema.Int, force: Schema.optional(Schema.Boolean) },
    success: RevertResult,
    error: Schema.Union(...Refusals, RevertConflict, FileLocked, FileTooLarge, QuotaExceeded)
  }).annotate(Requires, member),
  Rpc.make("locks", {
    payload: { projectId: ProjectId },
    success: Schema.Array(FileLock),
    error: Schema.Union(...Refusals)
  }).annotate(Requires, viewer)
)
  .prefix("file.")
  .middleware(AuthMiddleware) {}

/**
 * The workspace-relative form of a path a client gave, checked lexically before any file access:
 * `.` and empty segments are dropped; `..` segments (also percent-encoded ones such as `%2e%2e`),
 * absolute paths (`/x`, `C:\x`) and NUL bytes are refused. The text is taken as is, never URL-decoded again. The file service then resolves it
 * against the workspace (symlinks included) and refuses what leads outside.
 */
export const confinePath = (
  input: string
): { readonly _tag: "Ok"; readonly path: string } | { readonly _tag: "Refused"; readonly reason: string } => {
  if (input.includes("\0")) return { _tag: "Refused", reason: "path contains a NUL byte" }
  if (input.startsWith("/") || input.startsWith("\\") || /^[A-Za-z]:[\\/]/.test(input)) {
    return { _tag: "Refused", reason: `absolute paths are refused; give a path relative to the workspace: ${input}` }
  }
  const segments = input.split("/").filter((s) => s !== "" && s !== ".")
  if (segments.some((s) => s === ".." || s.split("\\").includes(".."))) return { _tag: "Refused", reason: `path escapes the workspace: ${input}` }
  // A segment that would become `..` if something decoded it again (`%2e%2e`, `.%2E`, ...).
  if (segments.some((s) => /^(\.|%2e)(\.|%2e)$/i.test(s))) return { _tag: "Refused", reason: `path has an encoded \`..\` segment: ${input}` }
  return { _tag: "Ok", path: segments.join("/") }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** Bytes as `FileContent` writes them: UTF-8 text when they are text (and `base64` was not asked for), else base64. */
export const encodeContent = (bytes: Uint8Array, wanted?: FileEncoding): { readonly encoding: FileEncoding; readonly content: string } => {
  if (wanted !== "base64" && !bytes.includes(0)) {
    try {
      return { encoding: "utf8", content: strictUtf8.decode(bytes) }
    } catch {
      // not UTF-8: falls through to base64
    }
  }
  return { encoding: "base64", content: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64") }
}

/** The bytes of `content` in `encoding`; undefined when it is not valid base64. */
export const decodeContent = (content: string, encoding: FileEncoding = "utf8"): Uint8Array | undefined => {
  if (encoding === "utf8") return new Uint8Array(Buffer.from(content, "utf8"))
  const compact = content.replace(/\s+/g, "")
  if (compact.length % 4 === 1 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return undefined
  return new Uint8Array(Buffer.from(compact, "base64"))
}
