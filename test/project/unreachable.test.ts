import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { HubRpcClient } from "../../src/client/HubClient.js"
import { startHub, tempDir } from "../support/Hub.js"
import { request } from "../support/Http.js"
import { backendConfig, backends } from "../support/Pg.js"

/**
 * A project whose workspace directory this hub cannot reach (hubs sharing a database need the same
 * filesystem): what needs the files fails with WorkspaceUnreachable naming the path, listing and
 * deleting the project still work, and a hub on PostgreSQL says at start which workspaces it cannot see.
 */

const sameFilesystem = /hubs sharing a database need the same filesystem/

/** An admin's project on a workspace of its own under `root`, holding one recorded file. */
const projectOnWorkspace = (admin: HubRpcClient, root: string, name: string) =>
  Effect.gen(function* () {
    const workspace = path.join(root, name)
    fs.mkdirSync(workspace)
    const project = yield* admin.project.create({ name, description: "", workspace })
    const version = yield* admin.file.write({ projectId: project.id, path: "a.txt", content: "kept in history\n" })
    return { project, workspace, version }
  })

describe.each(backends)("an unreachable workspace on %s", (backend) => {
  it.scopedLive("refuses file operations with WorkspaceUnreachable naming the path; the project is still listed and deleted", () =>
    Effect.gen(function* () {
      const root = fs.realpathSync(tempDir("kiris-roots-"))
      const hub = yield* startHub({ workspaceRoots: [root], ...(yield* backendConfig(backend)) })
      const admin = yield* hub.tcpClient()
      const { project, version, workspace } = yield* projectOnWorkspace(admin, root, "lost")
      fs.rmSync(workspace, { recursive: true, force: true })

      const refusals = [
        yield* Effect.flip(admin.file.write({ projectId: project.id, path: "b.txt", content: "x" })),
        yield* Effect.flip(admin.file.read({ projectId: project.id, path: "a.txt" })),
        yield* Effect.flip(admin.file.list({ projectId: project.id })),
        yield* Effect.flip(
          admin.file.restore({ projectId: project.id, snapshotId: (yield* admin.file.snapshot({ projectId: project.id, label: "s" })).id })
        )
      ]
      for (const error of refusals) {
        assert.strictEqual(error._tag, "WorkspaceUnreachable")
        if (error._tag !== "WorkspaceUnreachable") continue
        assert.strictEqual(error.path, workspace)
        assert.strictEqual(error.projectId, project.id)
        assert.include(error.reason, workspace)
        assert.match(error.reason, sameFilesystem)
      }
      assert.isFalse(fs.existsSync(workspace), "nothing recreated the workspace")
      const upload = yield* request(hub, "PUT", `/api/projects/${project.id}/files/b.txt`, { token: hub.adminKey, body: "x" })
      assert.deepStrictEqual([upload.status, upload.json?._tag, upload.json?.path], [503, "WorkspaceUnreachable", workspace])

      // Recorded history needs no workspace.
      const old = yield* admin.file.read({ projectId: project.id, path: "a.txt", version: version.id })
      assert.strictEqual(old.content, "kept in history\n")
      assert.deepStrictEqual(
        (yield* admin.project.list()).map((p) => p.id),
        [project.id]
      )
      assert.strictEqual((yield* admin.project.get({ projectId: project.id })).workspace, workspace)
      yield* admin.project.delete({ projectId: project.id, confirm: "lost" })
      assert.deepStrictEqual(yield* admin.project.list(), [])
    })
  )
})

describe("hubs sharing a database", () => {
  it.scopedLive.skipIf(!backends.includes("pg"))("a hub starting on PostgreSQL warns once for each workspace it cannot reach", () =>
    Effect.gen(function* () {
      const root = fs.realpathSync(tempDir("kiris-roots-"))
      const store = yield* backendConfig("pg")
      const first = yield* startHub({ workspaceRoots: [root], ...store })
      const admin = yield* first.tcpClient()
      const lost = yield* projectOnWorkspace(admin, root, "lost")
      const seen = yield* projectOnWorkspace(admin, root, "seen")
      fs.rmSync(lost.workspace, { recursive: true, force: true })

      const warnings: Array<string> = []
      const capture = Logger.make(({ logLevel, message }) => {
        if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) warnings.push(Array.isArray(message) ? message.join(" ") : String(message))
      })
      // A second hub on the same database and data dir: it sees one workspace, not the other.
      yield* startHub({ workspaceRoots: [root], ...store, dataDir: first.dataDir }).pipe(Effect.provide(Logger.add(capture)))
      const about = (workspace: string) => warnings.filter((w) => w.includes(workspace))
      assert.strictEqual(about(lost.workspace).length, 1, warnings.join("\n"))
      assert.match(about(lost.workspace)[0]!, sameFilesystem)
      assert.include(about(lost.workspace)[0]!, lost.project.id)
      assert.deepStrictEqual(about(seen.workspace), [])
    })
  )
})
