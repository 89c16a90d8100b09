import { HttpApiBuilder, type HttpServerRequest, HttpServerResponse, Multipart } from "@effect/platform"
import { Effect, Option, Stream } from "effect"
import * as path from "node:path"
import { ServerConfig } from "../../config/ServerConfig.js"
import { InvalidInput } from "../../domain/Errors.js"
import { FileTooLarge, PathRefused } from "../../domain/File.js"
import { Api } from "../../domain/http/Api.js"
import { FileService } from "../../files/FileService.js"
import { Projects } from "../../project/Projects.js"
import { ProjectDb } from "../../storage/ProjectDb.js"
import { authorOf, confined } from "../rpc/FileHandlers.js"
import { makeHttpAccess } from "./HttpAccess.js"

const types: Record<string, string> = {
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".csv": "text/csv; charset=utf-8",
  ".json": "application/json",
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".ts": "text/plain; charset=utf-8",
  ".py": "text/plain; charset=utf-8",
  ".xml": "application/xml",
  ".yaml": "text/plain; charset=utf-8",
  ".yml": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".pdf": "application/pdf",
  ".zip": "application/zip",
  ".gz": "application/gzip",
  ".tar": "application/x-tar",
  ".wasm": "application/wasm"
}

/** The content type a download is served with, by file extension; `application/octet-stream` otherwise. */
export const contentTypeOf = (file: string) => types[path.extname(file).toLowerCase()] ?? "application/octet-stream"

const tooBig = (cause: unknown) => {
  const text = cause instanceof Error ? cause.message : typeof cause === "object" && cause !== null ? JSON.stringify(cause) : String(cause)
  return /maxBytes exceeded|TooLarge|too large/i.test(text)
}

/**
 * The uploaded bytes: the `file` field (or the first file) of a multipart form, else the raw body.
 * The body limit was set by the BodyGuard; going past it, or past `limit` here, is `FileTooLarge`.
 */
const readUpload = (request: HttpServerRequest.HttpServerRequest, file: string, limit: number) =>
  Effect.gen(function* () {
    const declared = Number(request.headers["content-length"] ?? "0")
    const large = () => new FileTooLarge({ path: file, size: declared, limit })
    const unreadable = (e: unknown) =>
      tooBig(e) || tooBig((e as { cause?: unknown }).cause) ? large() : new InvalidInput({ reason: "unreadable request body" })
    const isMultipart = (request.headers["content-type"] ?? "").toLowerCase().includes("multipart/form-data")
    const bytes: Uint8Array = isMultipart
      ? yield* Stream.runCollect(
          Stream.filter(Multipart.withLimitsStream(request.multipartStream, { maxFileSize: Option.some(limit) }), Multipart.isFile)
        ).pipe(
          Effect.mapError(unreadable),
          Effect.flatMap((parts) => {
            const all = Array.from(parts)
            const part = all.find((p) => p.key === "file") ?? all[0]
            return part === undefined
              ? Effect.fail(new InvalidInput({ reason: "the multipart form has no file; send it in a field named `file`" }))
              : Effect.mapError(part.contentEffect, unreadable)
          })
        )
      : yield* Effect.map(Effect.mapError(request.arrayBuffer, unreadable), (b) => new Uint8Array(b))
    if (bytes.byteLength > limit) return yield* new FileTooLarge({ path: file, size: bytes.byteLength, limit })
    return bytes
  })

/**
 * The file's path from the route: the router's `*` (decoded once, never again), confined. The
 * router drops the empty segment of `/files//etc/passwd`, so a path that starts with `/` in the
 * URL itself is refused here as absolute.
 */
const filePath = (request: HttpServerRequest.HttpServerRequest, wildcard: string) =>
  /^\/api\/projects\/[^/?#]+\/files\/\//.test(request.url)
    ? Effect.fail(
        new PathRefused({ path: `/${wildcard}`, reason: `absolute paths are refused; give a path relative to the workspace: /${wildcard}` })
      )
    : confined(wildcard)

/**
 * REST upload and download of workspace files: the same FileService calls as `file.write` and
 * `file.read`. The path after `/files/` was decoded once by the router; it is confined here and
 * again by the service, never decoded a second time.
 */
export const FileApiHandlers = HttpApiBuilder.group(Api, "files", (handlers) =>
  Effect.gen(function* () {
    const files = yield* FileService
    const projects = yield* Projects
    const dbs = yield* ProjectDb
    const config = yield* ServerConfig
    const access = yield* makeHttpAccess
    return handlers
      .handleRaw("upload", ({ path: params, request, urlParams }) =>
        access("files", "upload")({ ...urlParams, ...params }, (caller) =>
          dbs.withProject(params.projectId)(
            Effect.gen(function* () {
              const project = yield* projects.get(caller, params.projectId)
              const relative = yield* filePath(request, params["*"])
              const content = yield* readUpload(request, relative, config.fileMaxBytes)
              return yield* files.write({
                workspace: project.workspace,
                path: relative,
                content,
                author: authorOf(caller),
                expectedVersion: urlParams.expectedVersion
              })
            })
          )
        )
      )
      .handle("download", ({ path: params, request, urlParams }) =>
        access("files", "download")({ ...urlParams, ...params }, (caller) =>
          dbs.withProject(params.projectId)(
            Effect.gen(function* () {
              const project = yield* projects.get(caller, params.projectId)
              const relative = yield* filePath(request, params["*"])
              const read = yield* files.read({ workspace: project.workspace, path: relative, version: urlParams.version })
              return HttpServerResponse.uint8Array(read.content, {
                contentType: contentTypeOf(relative),
                headers: {
                  "content-disposition": `attachment; filename*=UTF-8''${encodeURIComponent(path.posix.basename(relative))}`,
                  "x-content-type-options": "nosniff",
                  ...(read.version === null ? {} : { "x-kiris-file-version": String(read.version.id) })
                }
              })
            })
          )
        )
      )
  })
)
