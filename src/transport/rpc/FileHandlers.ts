import { Effect, Layer } from "effect"
import type { Principal } from "../../domain/Auth.js"
import { InvalidInput } from "../../domain/Errors.js"
import { PathRefused, type UserAuthor } from "../../domain/File.js"
import type { ProjectId } from "../../domain/Ids.js"
import { confinePath, decodeContent, encodeContent, FileContent, FileRpcs } from "../../domain/rpc/FileRpcs.js"
import { CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import { SessionRevertRpcs } from "../../domain/rpc/SessionRpcs.js"
import { FileService } from "../../files/FileService.js"
import { Projects } from "../../project/Projects.js"
import { Session } from "../../session/Session.js"
import { ProjectDb } from "../../storage/ProjectDb.js"
import { handlersLayer } from "./HandlersLayer.js"

/** A client's path in workspace-relative form, or PathRefused (see `confinePath`). */
export const confined = (path: string, options: { readonly root?: boolean } = {}) => {
  const checked = confinePath(path)
  if (checked._tag === "Refused") return Effect.fail(new PathRefused({ path, reason: checked.reason }))
  if (checked.path === "" && options.root !== true)
    return Effect.fail(new PathRefused({ path, reason: "the path names the workspace itself, not a file" }))
  return Effect.succeed(checked.path)
}

/** Who a write through the hub is recorded as: the calling user (the owner, for an API key). */
export const authorOf = (caller: Principal): UserAuthor => ({ kind: "user", userId: caller.userId })

/**
 * Thin handlers of `file.*` and `session.revert`. The auth middleware has checked the caller's
 * role and opened the project's database scope (`inProject` states it in the types); each handler
 * confines the path, finds the project's workspace and calls one FileService method.
 */
/** Runs `f` with the caller and the project's workspace, inside the project's database scope. */
const makeInWorkspace = Effect.gen(function* () {
  const projects = yield* Projects
  const dbs = yield* ProjectDb
  return <A, E, R>(projectId: ProjectId, f: (workspace: string, caller: Principal) => Effect.Effect<A, E, R>) =>
    Effect.flatMap(CurrentPrincipal, (caller) =>
      dbs.withProject(projectId)(Effect.flatMap(projects.get(caller, projectId), (project) => f(project.workspace, caller)))
    )
})

const Files = handlersLayer(
  FileRpcs,
  Effect.gen(function* () {
    const files = yield* FileService
    const dbs = yield* ProjectDb
    const inWorkspace = yield* makeInWorkspace
    return FileRpcs.of({
      "file.list": ({ dir, projectId }) =>
        inWorkspace(projectId, (workspace) =>
          Effect.flatMap(confined(dir ?? "", { root: true }), (d) => files.list({ workspace, dir: d === "" ? undefined : d }))
        ),
      "file.read": ({ encoding, path, projectId, version }) =>
        inWorkspace(projectId, (workspace) =>
          Effect.gen(function* () {
            const relative = yield* confined(path)
            const read = yield* files.read({ workspace, path: relative, version })
            return FileContent.make({
              path: relative,
              version: read.version,
              size: read.content.byteLength,
              ...encodeContent(read.content, encoding)
            })
          })
        ),
      "file.write": ({ content, encoding, expectedVersion, path, projectId }) =>
        inWorkspace(projectId, (workspace, caller) =>
          Effect.gen(function* () {
            const relative = yield* confined(path)
            const bytes = decodeContent(content, encoding)
            if (bytes === undefined) return yield* new InvalidInput({ reason: "content is not valid base64" })
            return yield* files.write({ workspace, path: relative, content: bytes, author: authorOf(caller), expectedVersion })
          })
        ),
      "file.history": ({ cursor, limit, path, projectId }) =>
        dbs.withProject(projectId)(Effect.flatMap(confined(path), (relative) => files.history({ path: relative, cursor, limit }))),
      "file.diff": ({ from, path, projectId, to }) =>
        dbs.withProject(projectId)(Effect.flatMap(confined(path), (relative) => files.diff({ path: relative, from, to }))),
      "file.snapshot": ({ label, projectId }) =>
        Effect.flatMap(CurrentPrincipal, (caller) => dbs.withProject(projectId)(files.snapshot({ label, author: authorOf(caller) }))),
      "file.snapshots": ({ projectId }) => dbs.withProject(projectId)(files.snapshots()),
      "file.restore": ({ force, projectId, snapshotId }) =>
        inWorkspace(projectId, (workspace, caller) => files.restore({ workspace, snapshotId, author: authorOf(caller), force })),
      "file.locks": ({ projectId }) => dbs.withProject(projectId)(files.locks())
    })
  })
)

const Revert = handlersLayer(
  SessionRevertRpcs,
  Effect.gen(function* () {
    const files = yield* FileService
    const sessions = yield* Session
    const inWorkspace = yield* makeInWorkspace
    return SessionRevertRpcs.of({
      "session.revert": ({ force, projectId, sessionId, toMessageId }) =>
        inWorkspace(projectId, (workspace, caller) =>
          Effect.zipRight(sessions.get(sessionId), files.revertSession({ workspace, sessionId, toMessageId, author: authorOf(caller), force }))
        )
    })
  })
)

export const FileHandlers = Layer.mergeAll(Files, Revert)
