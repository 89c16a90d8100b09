import { HttpIncomingMessage, HttpLayerRouter, HttpServerError, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"
import { ServerConfig } from "../../config/ServerConfig.js"
import { InvalidInput } from "../../domain/Errors.js"

const invalid = (reason: string, status: number) =>
  HttpServerResponse.schemaJson(InvalidInput)(new InvalidInput({ reason }), { status }).pipe(Effect.orDie)

const isRequestError = (e: unknown): e is HttpServerError.RequestError => e instanceof HttpServerError.RequestError

/**
 * Request bodies of REST routes: at most `maxFrameBytes` (the RPC frame limit). A declared
 * `content-length` above it is refused with 413 before the body is read; a chunked body that grows
 * past it is cut off. A body that cannot be read or is not JSON (HttpApi turns that into a defect)
 * becomes a 400 `InvalidInput` instead of an empty 400.
 */
export const BodyGuard = HttpLayerRouter.middleware(
  Effect.map(ServerConfig, (config) => (httpEffect) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const declared = Number(request.headers["content-length"] ?? "0")
      if (declared > config.maxFrameBytes) return invalid(`request body larger than ${config.maxFrameBytes} bytes`, 413)
      return HttpIncomingMessage.withMaxBodySize(httpEffect, Option.some(config.maxFrameBytes)).pipe(
        Effect.catchSomeDefect((defect) =>
          isRequestError(defect)
            ? Option.some(invalid(`unreadable request body: ${defect.cause instanceof Error ? defect.cause.message : defect.reason}`, 400))
            : Option.none()
        )
      )
    })
  )
)
