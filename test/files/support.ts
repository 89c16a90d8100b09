import { Effect } from "effect"
import type { Layer } from "effect"
import type { HubLayer } from "../../src/AppLayer.js"
import type { ProjectId } from "../../src/domain/Ids.js"
import { type FileEnv, FileService } from "../../src/files/FileService.js"
import { ProjectDb } from "../../src/storage/ProjectDb.js"
import type { TestHub } from "../support/Hub.js"

/** Runs an effect using the hub's FileService inside a project's database scope, server-side. */
export const withFiles =
  (hub: TestHub, projectId: ProjectId) =>
  <A, E>(f: (files: FileService) => Effect.Effect<A, E, FileEnv | Layer.Layer.Success<typeof HubLayer>>): Effect.Effect<A, E> =>
    Effect.gen(function* () {
      const dbs = yield* ProjectDb
      const files = yield* FileService
      return yield* dbs.withProject(projectId)(f(files))
    }).pipe(Effect.provide(hub.context))

export const text = (s: string) => new Uint8Array(Buffer.from(s, "utf8"))
export const decode = (bytes: Uint8Array) => Buffer.from(bytes).toString("utf8")
