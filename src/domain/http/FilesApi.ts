import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, Multipart, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import * as FileErrors from "../File.js"
import { FileVersion } from "../File.js"
import { ProjectId } from "../Ids.js"
import { Authentication } from "./Authentication.js"
import { Conflict, Forbidden, InvalidInput, NotFound, WorkspaceUnreachable } from "./HttpErrors.js"

/** The file errors as REST responses (see HttpErrors.ts for the others). */
export const PathRefused = FileErrors.PathRefused.annotations(HttpApiSchema.annotations({ status: 400 }))
export const FileTooLarge = FileErrors.FileTooLarge.annotations(HttpApiSchema.annotations({ status: 413 }))
export const FileLocked = FileErrors.FileLocked.annotations(HttpApiSchema.annotations({ status: 423 }))
export const QuotaExceeded = FileErrors.QuotaExceeded.annotations(HttpApiSchema.annotations({ status: 507 }))

/**
 * `{path}` is the rest of the URL after `/files/`: a path relative to the workspace, `/`-separated,
 * each segment percent-encoded as needed. It is decoded once by the router and never again, then
 * confined to the workspace (`..`, absolute paths and symlinks leading outside are refused).
 */
const FileRoute = "/api/projects/:projectId/files/*" as const
const FilePath = Schema.Struct({ projectId: ProjectId, "*": Schema.String })

const UploadForm = HttpApiSchema.Multipart(Schema.Struct({ file: Multipart.SingleFileSchema }))

/** The OpenAPI path of the file routes: `{path}` in place of the router's `*`. */
export const filesOpenApiPath = (path: string) => path.replace(/\/\*$/, "/{path}")

const describePathParameter = (op: Record<string, unknown>) => {
  const parameters = op["parameters"]
  if (!Array.isArray(parameters)) return op
  return {
    ...op,
    parameters: parameters.map((p: { name?: string }) =>
      p.name === "*" ? { ...p, name: "path", description: "Path of the file, relative to the workspace root" } : p
    )
  }
}

/**
 * A project's workspace files over plain HTTP: upload one file (a raw body, or a multipart form with
 * a `file` field; at most the hub's `fileMaxBytes`, else 413) as a new recorded version, and download
 * one (now, or at `?version=`) as raw bytes. Viewers download, members upload; a project the caller
 * cannot see is reported as not found.
 */
export class FilesApi extends HttpApiGroup.make("files")
  .add(
    HttpApiEndpoint.put("upload", FileRoute)
      .setPath(FilePath)
      .setUrlParams(
        Schema.Struct({
          /** Refuse the write (409) unless the path's latest version is this one (0: none yet). */
          expectedVersion: Schema.optional(Schema.NumberFromString)
        })
      )
      .setPayload(Schema.Union(HttpApiSchema.Uint8Array(), UploadForm))
      .addSuccess(FileVersion)
      .addError(NotFound)
      .addError(Forbidden)
      .addError(InvalidInput)
      .addError(PathRefused)
      .addError(FileTooLarge)
      .addError(FileLocked)
      .addError(Conflict)
      .addError(QuotaExceeded)
      .addError(WorkspaceUnreachable)
      .annotate(OpenApi.Transform, describePathParameter)
      .annotate(Requires, Access.project("member", "write"))
  )
  .add(
    HttpApiEndpoint.get("download", FileRoute)
      .setPath(FilePath)
      .setUrlParams(Schema.Struct({ version: Schema.optional(Schema.NumberFromString) }))
      .addSuccess(HttpApiSchema.Uint8Array())
      .addError(NotFound)
      .addError(Forbidden)
      .addError(PathRefused)
      .addError(WorkspaceUnreachable)
      .annotate(OpenApi.Transform, describePathParameter)
      .annotate(Requires, Access.project("viewer", "read"))
  )
  // Every operation here can be refused by the authorization path (see domain/Access.ts).
  .addError(Forbidden)
  .addError(NotFound)
  .middleware(Authentication) {}
