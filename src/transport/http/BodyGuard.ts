import { HttpIncomingMessage, HttpLayerRouter, HttpServerError, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"
import { ServerConfig } from "../../config/ServerConfig.js"
import { InvalidInput } from "../../domain/Errors.js"

const invalid = (reason: string, status: number) =>
  HttpServerResponse.schemaJson(InvalidInput)(new InvalidInput({ reason }), { status }).pipe(Effect.orDie)

const isRequestError = (e: unknown): e is HttpServerError.RequestError => e instanceof HttpServerError.RequestError

/** `PUT /api/projects/{id}/files/{path}`: a file upload, whose body may be as large as a file. */
const isUpload = (request: HttpServerRequest.HttpServerRequest) => request.method === "PUT" && /^\/api\/projects\/[^/?#]+\/files\//.test(request.url)

/** Room for a multipart form's boundaries and part headers around an uploaded file. */
const multipartEnvelope = 64 * 1024

/**
 * Request bodies of REST routes: at most `maxFrameBytes` (the RPC frame limit); file uploads at
 * most `fileMaxBytes` (plus a multipart envelope; the handler checks the file itself). A declared
 * `content-length` above it is refused with 413 before the body is read; a chunked body that grows
 * past it is cut off. A body that cannot be read or is not JSON (HttpApi turns that into a defect)
 * becomes a 400 `InvalidInput` instead of an empty 400.
 */
export const BodyGuard = HttpLayerRouter.middleware(
  Effect.map(
    ServerConfig,
    (config) => (httpEffect) =>
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
        const declared = Number(request.headers["content-length"] ?? "0")
        const limit = isUpload(request) ? config.fileMaxBytes + multipartEnvelope : config.maxFrameBytes
        if (declared > limit) return invalid(`request body larger than ${limit} bytes`, 413)
        return HttpIncomingMessage.withMaxBodySize(httpEffect, Option.some(limit)).pipe(
          Effect.catchSomeDefect((defect) =>
            isRequestError(defect)
              ? Option.some(invalid(`unreadable request body: ${defect.cause instanceof Error ? defect.cause.message : defect.reason}`, 400))
              : Option.none()
          )
        )
      })
  )
)
