/**
 * The versioned file service: storage and history paging. Runs a whole hub in this process (data in
 * a temp dir) and reports
 *   1. storage: one 1 MB file written `--versions` times (default 1,000) through FileService.write,
 *      each time with a small edit; the bytes the project's blobs take versus the naive
 *      versions × size, and the same writes as plain fs.writeFileSync calls as a baseline;
 *   2. history: one path with `--history` versions (default 10,000); every page of `file.history`
 *      (`--page` versions each, default 50) read newest to oldest via the service and via TCP RPC,
 *      with p50/p99 latency, against the same indexed SELECT run on better-sqlite3 directly.
 * Peak RSS is printed at the end. Usage:
 *   npm run bench -- files [--versions 1000] [--size 1048576] [--history 10000] [--page 50]
 */
import { NodeContext } from "@effect/platform-node"
import { SocketServer } from "@effect/platform"
import Database from "better-sqlite3"
import { Context, Effect, Layer } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { HubLayer } from "../../src/AppLayer.js"
import { makeHubClient } from "../../src/client/HubClient.js"
import { ServerConfig, type ServerConfigShape } from "../../src/config/ServerConfig.js"
import type { FileAuthor } from "../../src/domain/File.js"
import type { UserId } from "../../src/domain/Ids.js"
import { FileService } from "../../src/files/FileService.js"
import { ProjectDb, projectDir } from "../../src/storage/ProjectDb.js"
import { flag } from "./_flags.js"
import { mb, peakRss, runBench } from "./_main.js"

const versions = flag("versions", 1000)
const size = flag("size", 1024 * 1024)
const historyVersions = flag("history", 10_000)
const pageSize = flag("page", 50)
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kiris-bench-files-"))

const dirBytes = (dir: string): number => {
  let total = 0
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name)
    total += entry.isDirectory() ? dirBytes(p) : fs.statSync(p).size
  }
  return total
}

const pct = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
const latency = (label: string, samples: Array<number>) => {
  samples.sort((a, b) => a - b)
  console.log(
    `  ${label.padEnd(34)} p50=${pct(samples, 0.5).toFixed(3)} ms  p99=${pct(samples, 0.99).toFixed(3)} ms  max=${samples[samples.length - 1]!.toFixed(3)} ms`
  )
}

/** A 1 MB text-like content; `edit(i)` changes a few bytes at a place that depends on `i`. */
const base = Buffer.from(crypto.randomBytes(size).toString("base64").slice(0, size))
const edit = (i: number) => {
  const copy = Buffer.from(base)
  const at = (i * 7919) % (size - 16)
  copy.write(`edit ${i}`.padEnd(16, "."), at)
  return new Uint8Array(copy)
}

/** A whole hub in this process with its data in a fresh directory under `dataDir`, and one project. */
const openHub = (retention: Partial<ServerConfigShape>) =>
  Effect.gen(function* () {
    const dir = fs.mkdtempSync(path.join(dataDir, "hub-"))
    const config = ServerConfig.layerWith({
      dataDir: dir,
      port: 0,
      tcpPort: 0,
      fileQuotaBytes: 64 * 1024 * 1024 * 1024,
      fileMaxBytes: Math.max(size, 1024) * 2,
      ...retention
    })
    const context = yield* Layer.build(HubLayer.pipe(Layer.provide(config), Layer.provide(NodeContext.layer)))
    const tcpPort = (Context.get(context, SocketServer.SocketServer).address as SocketServer.TcpAddress).port
    const adminKey = fs.readFileSync(path.join(dir, "admin.key"), "utf8").trim()
    const client = yield* makeHubClient({ transport: "tcp", host: "127.0.0.1", port: tcpPort }, adminKey)
    const me = yield* client.user.whoami()
    const project = yield* client.project.create({ name: "bench" })
    const author: FileAuthor = { kind: "user", userId: me.userId as UserId }
    return {
      dir,
      client,
      project,
      author,
      keep: (yield* Effect.provide(ServerConfig, config)).fileKeepVersions,
      files: Context.get(context, FileService),
      inProject: Context.get(context, ProjectDb).withProject(project.id)
    }
  })

const program = Effect.gen(function* () {
  // The storage run keeps the default retention; the history run keeps every version it writes.
  const { dir, project, author, keep, files, inProject } = yield* openHub({})
  console.log(`retention: fileKeepVersions=${keep} (the default) for the storage run`)

  // 1. Storage of many small edits of one large file.
  console.log(`storage: ${versions} versions of one ${mb(size)} file, a 16-byte edit each`)
  let started = performance.now()
  for (let i = 0; i < versions; i++) {
    yield* inProject(files.write({ workspace: project.workspace, path: "big.txt", content: edit(i), author }))
  }
  const serviceSeconds = (performance.now() - started) / 1000
  const blobs = dirBytes(path.join(projectDir(dir, project.id), "blobs"))
  const naive = versions * size
  console.log(`  FileService.write                  ${serviceSeconds.toFixed(2)} s (${((serviceSeconds * 1000) / versions).toFixed(2)} ms per write)`)
  console.log(
    `  blobs stored                       ${mb(blobs)} (${blobs} bytes) vs naive ${mb(naive)}: ${((blobs / naive) * 100).toFixed(1)}% of naive`
  )

  const rawDir = fs.mkdtempSync(path.join(dataDir, "raw-"))
  started = performance.now()
  for (let i = 0; i < versions; i++) fs.writeFileSync(path.join(rawDir, `v${i}`), edit(i))
  const rawSeconds = (performance.now() - started) / 1000
  console.log(
    `  baseline fs.writeFileSync         ${rawSeconds.toFixed(2)} s (${((rawSeconds * 1000) / versions).toFixed(2)} ms per write), ${mb(dirBytes(rawDir))} on disk`
  )
  fs.rmSync(rawDir, { recursive: true, force: true })

  // 2. History paging of a path with many versions.
  const history = yield* openHub({ fileKeepVersions: historyVersions * 2 })
  console.log(`history: one path with ${historyVersions} versions, pages of ${pageSize}`)
  started = performance.now()
  for (let i = 0; i < historyVersions; i++) {
    yield* history.inProject(
      history.files.write({
        workspace: history.project.workspace,
        path: "log.txt",
        content: new Uint8Array(Buffer.from(`line ${i}\n`)),
        author: history.author
      })
    )
  }
  const buildSeconds = (performance.now() - started) / 1000
  console.log(`  built with FileService.write       ${buildSeconds.toFixed(2)} s (${Math.round(historyVersions / buildSeconds)} writes/s)`)

  const viaService: Array<number> = []
  let cursor: number | undefined = undefined
  let seen = 0
  do {
    const t = performance.now()
    const page: { readonly versions: ReadonlyArray<unknown>; readonly next: number | null } = yield* history.inProject(
      history.files.history({ path: "log.txt", cursor, limit: pageSize })
    )
    viaService.push(performance.now() - t)
    seen += page.versions.length
    cursor = page.next ?? undefined
  } while (cursor !== undefined)
  if (seen !== historyVersions) throw new Error(`paged ${seen} versions, expected ${historyVersions}`)

  const viaRpc: Array<number> = []
  cursor = undefined
  do {
    const t = performance.now()
    const page: { readonly next: number | null } = yield* history.client.file.history({
      projectId: history.project.id,
      path: "log.txt",
      limit: pageSize,
      ...(cursor === undefined ? {} : { cursor })
    })
    viaRpc.push(performance.now() - t)
    cursor = page.next ?? undefined
  } while (cursor !== undefined)

  const db = new Database(path.join(projectDir(history.dir, history.project.id), "project.db"), { readonly: true })
  const first = db.prepare("SELECT * FROM file_versions WHERE path = ? ORDER BY id DESC LIMIT ?")
  const next = db.prepare("SELECT * FROM file_versions WHERE path = ? AND id < ? ORDER BY id DESC LIMIT ?")
  const viaSqlite: Array<number> = []
  let rawCursor: number | undefined = undefined
  do {
    const t = performance.now()
    const rows = (rawCursor === undefined ? first.all("log.txt", pageSize + 1) : next.all("log.txt", rawCursor, pageSize + 1)) as Array<{
      id: number
    }>
    viaSqlite.push(performance.now() - t)
    rawCursor = rows.length > pageSize ? rows[pageSize - 1]!.id : undefined
  } while (rawCursor !== undefined)
  db.close()

  console.log(`  ${viaService.length} pages each way:`)
  latency("FileService.history", viaService)
  latency("file.history over TCP RPC", viaRpc)
  latency("baseline better-sqlite3 SELECT", viaSqlite)
  console.log(peakRss())
})

void runBench(program, dataDir)
