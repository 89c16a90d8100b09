import { Effect } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { ServerConfig } from "../config/ServerConfig.js"
import type { ProjectId } from "../domain/Ids.js"
import { projectDir } from "../storage/ProjectDb.js"

export const sha256 = (content: Uint8Array) => crypto.createHash("sha256").update(content).digest("hex")

const HASH = /^[0-9a-f]{64}$/

/**
 * Content-addressed file contents of a project: `<data-dir>/projects/<id>/blobs/<2 hex>/<sha256>`,
 * next to the project's database and outside every workspace. A content is stored once however
 * many versions share it; writes go through a temporary file and a rename, so a blob is either
 * complete or absent.
 */
export class Blobs extends Effect.Service<Blobs>()("kiris/Blobs", {
  effect: Effect.gen(function* () {
    const config = yield* ServerConfig

    const dirOf = (projectId: ProjectId) => path.join(projectDir(config.dataDir, projectId), "blobs")
    const fileOf = (projectId: ProjectId, hash: string) => {
      if (!HASH.test(hash)) throw new Error(`not a sha256 hash: ${hash}`)
      return path.join(dirOf(projectId), hash.slice(0, 2), hash)
    }

    /** Stores the content under its hash unless already there; returns whether it was new on disk. */
    const put = (projectId: ProjectId, hash: string, content: Uint8Array) =>
      Effect.sync(() => {
        const file = fileOf(projectId, hash)
        if (fs.existsSync(file)) return false
        fs.mkdirSync(path.dirname(file), { recursive: true })
        const tmp = `${file}.${process.pid}.${crypto.randomBytes(6).toString("hex")}.tmp`
        fs.writeFileSync(tmp, content)
        fs.renameSync(tmp, file)
        return true
      })

    const get = (projectId: ProjectId, hash: string) => Effect.sync((): Uint8Array => fs.readFileSync(fileOf(projectId, hash)))

    const remove = (projectId: ProjectId, hash: string) => Effect.sync(() => fs.rmSync(fileOf(projectId, hash), { force: true }))

    return { put, get, remove, dirOf } as const
  })
}) {}
