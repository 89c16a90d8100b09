import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, type Scope } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { type HubRpcClient, makeHubClient } from "../../src/client/HubClient.js"
import type { MessageId, ProjectId, SessionId } from "../../src/domain/Ids.js"
import { FileService } from "../../src/files/FileService.js"
import { ProjectDb } from "../../src/storage/ProjectDb.js"
import { startHub, startHubWithIdleModel, tempDir, type TestHub } from "../support/Hub.js"
import { type Backend, backendConfig, backends } from "../support/Pg.js"

/**
 * The file service's transports against a real hub: the `file.*` RPCs and `session.revert` over TCP
 * NDJSON and over WebSocket, and REST upload/download over HTTP, including who may call them and
 * that no path leads out of the workspace, however it is spelled.
 */

type Connect = (hub: TestHub, token: string | undefined) => Effect.Effect<HubRpcClient, never, Scope.Scope>

const overTcp: Connect = (hub, token) => makeHubClient({ transport: "tcp", host: "127.0.0.1", port: hub.tcpPort }, token)
const overWs: Connect = (hub, token) => makeHubClient({ transport: "ws", url: hub.wsUrl }, token)

const text = (s: string) => new Uint8Array(Buffer.from(s, "utf8"))
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64")

/** Random bytes with NULs and invalid UTF-8 guaranteed in them. */
const binary = (size: number) => {
  const bytes = new Uint8Array(crypto.randomBytes(size))
  bytes[0] = 0
  bytes[1] = 0xff
  bytes[size - 1] = 0
  return bytes
}

/** A directory outside every workspace with a secret in it, and a symlink `link` to it inside the workspace. */
const plantSymlink = (workspace: string) => {
  const outside = tempDir("kiris-outside-")
  fs.writeFileSync(path.join(outside, "secret.txt"), "top secret")
  fs.symlinkSync(outside, path.join(workspace, "link"))
  return outside
}

interface RawReply {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: Buffer
}

/** An HTTP request with the path sent exactly as given (fetch would normalize `..` and `%2e%2e`). */
const raw = (
  hub: TestHub,
  method: string,
  rawPath: string,
  options: {
    readonly token?: string | undefined
    readonly body?: Uint8Array
    readonly headers?: Record<string, string>
    readonly chunked?: boolean
  } = {}
) =>
  Effect.async<RawReply>((resume) => {
    const headers: Record<string, string> = { ...options.headers }
    if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`
    if (options.body !== undefined) {
      headers["content-type"] ??= "application/octet-stream"
      if (options.chunked !== true) headers["content-length"] ??= String(options.body.byteLength)
    }
    const req = http.request({ host: "127.0.0.1", port: hub.httpPort, method, path: rawPath, headers }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) })))
    })
    // A hub that stops reading an oversized body may reset the connection before the client reads the answer.
    req.on("error", (e) =>
      resume(
        (e as NodeJS.ErrnoException).code === "ECONNRESET" || (e as NodeJS.ErrnoException).code === "EPIPE"
          ? Effect.succeed({ status: -1, headers: {}, body: Buffer.from(e.message) })
          : Effect.die(e)
      )
    )
    if (options.chunked === true && options.body !== undefined) {
      // Sent in pieces with no content-length: the hub only learns the size while reading.
      const body = Buffer.from(options.body)
      for (let at = 0; at < body.length; at += 16_384) req.write(body.subarray(at, at + 16_384))
      req.end()
    } else req.end(options.body === undefined ? undefined : Buffer.from(options.body))
  })

const jsonOf = (reply: RawReply) => JSON.parse(reply.body.toString("utf8")) as { _tag?: string; entity?: string; id?: number; size?: number }

/** A project with an owner (the admin), a viewer and an outsider, each with a key. */
const world = (hub: TestHub) =>
  Effect.gen(function* () {
    const admin = yield* overTcp(hub, hub.adminKey)
    const project = yield* admin.project.create({ name: "files" })
    const keyFor = (name: string) =>
      Effect.gen(function* () {
        const user = yield* admin.user.create({ name, password: `${name}-password`, isAdmin: false })
        return (yield* admin.key.create({ name: `${name} key`, scopes: ["read", "write"], userId: user.id })).key
      })
    const viewerKey = yield* keyFor("viewer")
    const outsiderKey = yield* keyFor("outsider")
    yield* admin.project.addMember({ projectId: project.id, user: "viewer", role: "viewer" })
    return { admin, projectId: project.id, workspace: project.workspace, viewerKey, outsiderKey }
  })

const TRAVERSALS = ["../etc/passwd", "/etc/passwd", "%2e%2e/x", "a/../../x", "link/secret.txt"]

const rpcSuite = (name: string, connect: Connect, backend: Backend) =>
  describe(`file RPCs over ${name} on ${backend}`, () => {
    it.scopedLive("write, read, list, history and diff", () =>
      Effect.gen(function* () {
        const hub = yield* startHub(yield* backendConfig(backend))
        const w = yield* world(hub)
        const client = yield* connect(hub, hub.adminKey)
        const projectId = w.projectId

        const v1 = yield* client.file.write({ projectId, path: "notes/a.txt", content: "one\n" })
        const v2 = yield* client.file.write({ projectId, path: "./notes//a.txt", content: "two\n", expectedVersion: v1.id })
        assert.strictEqual(v2.path, "notes/a.txt")
        assert.isAbove(v2.id, v1.id)
        assert.deepStrictEqual(v2.author, { kind: "user", userId: (yield* client.user.whoami()).userId })
        const stale = yield* Effect.flip(client.file.write({ projectId, path: "notes/a.txt", content: "three\n", expectedVersion: v1.id }))
        assert.strictEqual(stale._tag, "Conflict")
        assert.strictEqual(fs.readFileSync(path.join(w.workspace, "notes/a.txt"), "utf8"), "two\n")

        const now = yield* client.file.read({ projectId, path: "notes/a.txt" })
        assert.deepStrictEqual([now.encoding, now.content, now.size, now.version?.id], ["utf8", "two\n", 4, v2.id])
        const old = yield* client.file.read({ projectId, path: "notes/a.txt", version: v1.id })
        assert.deepStrictEqual([old.encoding, old.content], ["utf8", "one\n"])
        const forced = yield* client.file.read({ projectId, path: "notes/a.txt", encoding: "base64" })
        assert.deepStrictEqual([forced.encoding, forced.content], ["base64", b64(text("two\n"))])

        const bytes = binary(4096)
        const bin = yield* client.file.write({ projectId, path: "data.bin", content: b64(bytes), encoding: "base64" })
        assert.strictEqual(bin.size, bytes.byteLength)
        const back = yield* client.file.read({ projectId, path: "data.bin" })
        assert.strictEqual(back.encoding, "base64")
        assert.isTrue(Buffer.from(back.content, "base64").equals(Buffer.from(bytes)))
        assert.isTrue(fs.readFileSync(path.join(w.workspace, "data.bin")).equals(Buffer.from(bytes)))
        const badBase64 = yield* Effect.flip(client.file.write({ projectId, path: "x.bin", content: "not base64!", encoding: "base64" }))
        assert.strictEqual(badBase64._tag, "InvalidInput")

        const root = yield* client.file.list({ projectId })
        assert.includeMembers(
          root.map((e) => `${e.type}:${e.name}`),
          ["dir:notes", "file:data.bin"]
        )
        const notes = yield* client.file.list({ projectId, dir: "notes" })
        assert.deepStrictEqual(
          notes.map((e) => [e.name, e.type, e.size, e.latestVersion]),
          [["a.txt", "file", 4, v2.id]]
        )

        const history = yield* client.file.history({ projectId, path: "notes/a.txt" })
        assert.deepStrictEqual(
          history.versions.map((v) => v.id),
          [v2.id, v1.id]
        )
        const first = yield* client.file.history({ projectId, path: "notes/a.txt", limit: 1 })
        assert.deepStrictEqual(
          first.versions.map((v) => v.id),
          [v2.id]
        )
        assert.isNotNull(first.next)
        const second = yield* client.file.history({ projectId, path: "notes/a.txt", limit: 1, cursor: first.next! })
        assert.deepStrictEqual(
          second.versions.map((v) => v.id),
          [v1.id]
        )

        const diff = yield* client.file.diff({ projectId, path: "notes/a.txt", from: v1.id, to: v2.id })
        assert.isFalse(diff.binary)
        assert.include(diff.unified, "-one")
        assert.include(diff.unified, "+two")

        const snapshot = yield* client.file.snapshot({ projectId, label: "before" })
        yield* client.file.write({ projectId, path: "notes/a.txt", content: "after\n" })
        assert.include(
          (yield* client.file.snapshots({ projectId })).map((s) => s.id),
          snapshot.id
        )
        const restored = yield* client.file.restore({ projectId, snapshotId: snapshot.id })
        assert.include(restored.restored, "notes/a.txt")
        assert.strictEqual(fs.readFileSync(path.join(w.workspace, "notes/a.txt"), "utf8"), "two\n")
        assert.deepStrictEqual(yield* client.file.locks({ projectId }), [])

        // A viewer reads but may not write; an outsider does not see the project.
        const viewer = yield* connect(hub, w.viewerKey)
        assert.strictEqual((yield* viewer.file.read({ projectId, path: "notes/a.txt" })).content, "two\n")
        assert.strictEqual((yield* Effect.flip(viewer.file.write({ projectId, path: "v.txt", content: "x" })))._tag, "Forbidden")
        const outsider = yield* connect(hub, w.outsiderKey)
        const hidden = yield* Effect.flip(outsider.file.list({ projectId }))
        assert.deepStrictEqual([hidden._tag, hidden._tag === "NotFound" && hidden.entity], ["NotFound", "project"])
      })
    )

    it.scopedLive("no file RPC reaches outside the workspace", () =>
      Effect.gen(function* () {
        const hub = yield* startHub(yield* backendConfig(backend))
        const w = yield* world(hub)
        const client = yield* connect(hub, hub.adminKey)
        const projectId = w.projectId
        const outside = plantSymlink(w.workspace)
        const v = yield* client.file.write({ projectId, path: "inside.txt", content: "in" })

        for (const p of TRAVERSALS) {
          const calls = {
            read: client.file.read({ projectId, path: p }),
            write: client.file.write({ projectId, path: p, content: "pwned" }),
            list: client.file.list({ projectId, dir: p }),
            history: client.file.history({ projectId, path: p }),
            diff: client.file.diff({ projectId, path: p, from: v.id, to: v.id })
          }
          for (const [call, effect] of Object.entries(calls)) {
            const exit = yield* Effect.exit(effect as Effect.Effect<unknown, { readonly _tag: string }>)
            if (p === "link/secret.txt" && (call === "history" || call === "diff")) {
              // No disk access: nothing was ever recorded under the symlink, so nothing leaks.
              assert.isTrue(
                Exit.isFailure(exit) || (exit.value as { versions: Array<unknown> }).versions.length === 0,
                `${call} ${p}: ${JSON.stringify(exit)}`
              )
              continue
            }
            assert.isTrue(Exit.isFailure(exit), `${call} ${p} succeeded`)
            const error = Exit.isFailure(exit) ? exit.cause : undefined
            assert.include(JSON.stringify(error), "PathRefused", `${call} ${p}: ${JSON.stringify(error)}`)
          }
        }
        assert.strictEqual(fs.readFileSync(path.join(outside, "secret.txt"), "utf8"), "top secret")
        assert.deepStrictEqual(fs.readdirSync(outside), ["secret.txt"])
        assert.isFalse(fs.existsSync(path.join(path.dirname(w.workspace), "x")))
      })
    )

    it.scopedLive("session.revert puts back the session's files and reports a conflict as RevertConflict", () =>
      Effect.gen(function* () {
        const hub = yield* startHubWithIdleModel(yield* backendConfig(backend))
        const w = yield* world(hub)
        const client = yield* connect(hub, hub.adminKey)
        const projectId = w.projectId
        const before = yield* client.file.write({ projectId, path: "src/app.ts", content: "v1\n" })
        const session = yield* client.session.create({ projectId })

        // The session's agent edits the file (as its write tool does), and its turn ends.
        yield* Effect.gen(function* () {
          const files = yield* FileService
          const dbs = yield* ProjectDb
          yield* dbs.withProject(projectId)(
            Effect.zipRight(
              files.write({
                workspace: w.workspace,
                path: "src/app.ts",
                content: text("agent\n"),
                author: { kind: "session", sessionId: session.id, messageId: "msg_agent" as MessageId, toolCallId: "call_1" }
              }),
              files.releaseLocks({ sessionId: session.id })
            )
          )
        }).pipe(Effect.provide(hub.context), Effect.orDie)

        // Someone else changes it afterwards: the revert refuses without --force.
        yield* client.file.write({ projectId, path: "src/app.ts", content: "human\n" })
        const conflict = yield* Effect.flip(client.session.revert({ projectId, sessionId: session.id }))
        assert.strictEqual(conflict._tag, "RevertConflict")
        assert.deepStrictEqual(conflict._tag === "RevertConflict" && conflict.paths, ["src/app.ts"])
        assert.strictEqual(fs.readFileSync(path.join(w.workspace, "src/app.ts"), "utf8"), "human\n")

        const viewer = yield* connect(hub, w.viewerKey)
        assert.strictEqual((yield* Effect.flip(viewer.session.revert({ projectId, sessionId: session.id, force: true })))._tag, "Forbidden")

        const forced = yield* client.session.revert({ projectId, sessionId: session.id, force: true })
        assert.deepStrictEqual(forced.restored, ["src/app.ts"])
        assert.strictEqual(fs.readFileSync(path.join(w.workspace, "src/app.ts"), "utf8"), "v1\n")
        assert.strictEqual(
          Buffer.from(
            (yield* client.file.read({ projectId, path: "src/app.ts", version: before.id, encoding: "base64" })).content,
            "base64"
          ).toString(),
          "v1\n"
        )
        const unknown = yield* Effect.flip(client.session.revert({ projectId, sessionId: session.id, toMessageId: "msg_unknown" as MessageId }))
        assert.deepStrictEqual([unknown._tag, unknown._tag === "NotFound" && unknown.entity], ["NotFound", "message"])
        const noSession = yield* Effect.flip(client.session.revert({ projectId, sessionId: "ses_unknown" as SessionId }))
        assert.deepStrictEqual([noSession._tag, noSession._tag === "NotFound" && noSession.entity], ["NotFound", "session"])
      })
    )
  })

// The storage-facing suite runs on every backend over TCP; the WebSocket transport on SQLite.
for (const backend of backends) rpcSuite("TCP", overTcp, backend)
rpcSuite("WebSocket", overWs, "sqlite")

const filesUrl = (projectId: ProjectId, file: string) => `/api/projects/${projectId}/files/${file}`

describe.each(backends)("file REST binary contents on %s", (backend) => {
  it.scopedLive("a binary upload downloads byte for byte, raw or multipart, at any version", () =>
    Effect.gen(function* () {
      const hub = yield* startHub(yield* backendConfig(backend))
      const w = yield* world(hub)
      const bytes = binary(300_000)
      const put = yield* raw(hub, "PUT", filesUrl(w.projectId, "blobs/r%C3%A9sum%C3%A9.bin"), { token: hub.adminKey, body: bytes })
      assert.strictEqual(put.status, 200, put.body.toString())
      const v1 = jsonOf(put)
      assert.strictEqual(v1.size, bytes.byteLength)
      assert.isTrue(fs.readFileSync(path.join(w.workspace, "blobs", "résumé.bin")).equals(Buffer.from(bytes)))

      const got = yield* raw(hub, "GET", filesUrl(w.projectId, "blobs/r%C3%A9sum%C3%A9.bin"), { token: w.viewerKey })
      assert.strictEqual(got.status, 200)
      assert.isTrue(got.body.equals(Buffer.from(bytes)))
      assert.strictEqual(got.headers["content-type"], "application/octet-stream")
      assert.strictEqual(got.headers["content-length"], String(bytes.byteLength))
      assert.strictEqual(got.headers["x-kiris-file-version"], String(v1.id))

      const form = new FormData()
      const second = binary(1000)
      form.append("file", new Blob([second]), "upload.bin")
      const multipart = yield* Effect.promise(() =>
        fetch(`${hub.httpUrl}${filesUrl(w.projectId, "blobs/r%C3%A9sum%C3%A9.bin")}`, {
          method: "PUT",
          headers: { authorization: `Bearer ${hub.adminKey}` },
          body: form
        })
      )
      assert.strictEqual(multipart.status, 200, yield* Effect.promise(() => multipart.text()))
      const now = yield* raw(hub, "GET", filesUrl(w.projectId, "blobs/r%C3%A9sum%C3%A9.bin"), { token: w.viewerKey })
      assert.isTrue(now.body.equals(Buffer.from(second)))
      const then = yield* raw(hub, "GET", `${filesUrl(w.projectId, "blobs/r%C3%A9sum%C3%A9.bin")}?version=${v1.id}`, { token: w.viewerKey })
      assert.isTrue(then.body.equals(Buffer.from(bytes)))

      const textFile = yield* raw(hub, "PUT", filesUrl(w.projectId, "readme.md"), {
        token: hub.adminKey,
        body: text("# hi\n"),
        headers: { "content-type": "text/markdown" }
      })
      assert.strictEqual(textFile.status, 200)
      const md = yield* raw(hub, "GET", filesUrl(w.projectId, "readme.md"), { token: hub.adminKey })
      assert.deepStrictEqual([md.headers["content-type"], md.body.toString()], ["text/markdown; charset=utf-8", "# hi\n"])
      assert.strictEqual((yield* raw(hub, "GET", filesUrl(w.projectId, "missing.txt"), { token: hub.adminKey })).status, 404)

      // The path is decoded exactly once: `100%2525.txt` names the file `100%25.txt`.
      assert.strictEqual((yield* raw(hub, "PUT", filesUrl(w.projectId, "100%2525.txt"), { token: hub.adminKey, body: text("once") })).status, 200)
      assert.strictEqual(fs.readFileSync(path.join(w.workspace, "100%25.txt"), "utf8"), "once")
      assert.isFalse(fs.existsSync(path.join(w.workspace, "100%.txt")))

      const spec = (yield* Effect.promise(() => fetch(`${hub.httpUrl}/openapi.json`).then((r) => r.json()))) as {
        paths: Record<string, Record<string, unknown>>
      }
      assert.hasAllKeys(spec.paths["/api/projects/{projectId}/files/{path}"]!, ["get", "put"])
    })
  )
})

describe("file REST upload and download", () => {
  it.scopedLive("over the size limit is 413; viewers may not upload; no token is 401; an unseen project is 404", () =>
    Effect.gen(function* () {
      const hub = yield* startHub({ fileMaxBytes: 1024 })
      const w = yield* world(hub)
      const url = filesUrl(w.projectId, "big.bin")
      assert.strictEqual((yield* raw(hub, "PUT", url, { token: hub.adminKey, body: binary(1024) })).status, 200)
      const over = yield* raw(hub, "PUT", url, { token: hub.adminKey, body: binary(1025) })
      assert.deepStrictEqual([over.status, jsonOf(over)._tag], [413, "FileTooLarge"])
      const farOver = yield* raw(hub, "PUT", url, { token: hub.adminKey, body: binary(200_000) })
      assert.strictEqual(farOver.status, 413)
      const chunked = yield* raw(hub, "PUT", url, { token: hub.adminKey, body: binary(200_000), chunked: true })
      assert.include([413, -1], chunked.status, "a chunked body over the limit is refused (413, or the connection is reset)")
      assert.strictEqual(fs.statSync(path.join(w.workspace, "big.bin")).size, 1024)

      const viewerPut = yield* raw(hub, "PUT", filesUrl(w.projectId, "v.txt"), { token: w.viewerKey, body: text("x") })
      assert.deepStrictEqual([viewerPut.status, jsonOf(viewerPut)._tag], [403, "Forbidden"])
      assert.strictEqual((yield* raw(hub, "GET", url, { token: w.viewerKey })).status, 200)
      for (const method of ["GET", "PUT"]) {
        const anonymous = yield* raw(hub, method, url, method === "PUT" ? { body: text("x") } : {})
        assert.strictEqual(anonymous.status, 401, `${method} without token`)
        const outsider = yield* raw(hub, method, url, { token: w.outsiderKey, ...(method === "PUT" ? { body: text("x") } : {}) })
        assert.deepStrictEqual(
          [outsider.status, jsonOf(outsider)._tag, jsonOf(outsider).entity],
          [404, "NotFound", "project"],
          `${method} as outsider`
        )
      }
      assert.isFalse(fs.existsSync(path.join(w.workspace, "v.txt")))
    })
  )

  it.scopedLive("paths leading outside the workspace are refused, however they are spelled", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const w = yield* world(hub)
      const outside = plantSymlink(w.workspace)
      const base = `/api/projects/${w.projectId}/files/`
      const spellings = [
        "../etc/passwd",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "%2e%2e/x",
        "%2E%2E%2Fx",
        "%252e%252e/x",
        "a/%2e%2e/%2e%2e/x",
        "..%2f..%2fetc%2fpasswd",
        "link/secret.txt",
        "link/new.txt"
      ]
      for (const s of spellings) {
        for (const method of ["GET", "PUT"]) {
          const reply = yield* raw(hub, method, base + s, { token: hub.adminKey, ...(method === "PUT" ? { body: text("pwned") } : {}) })
          assert.deepStrictEqual(
            [reply.status, jsonOf(reply)._tag],
            [400, "PathRefused"],
            `${method} ${s}: ${reply.status} ${reply.body.toString().slice(0, 200)}`
          )
        }
      }
      assert.deepStrictEqual(fs.readdirSync(outside), ["secret.txt"])
      assert.strictEqual(fs.readFileSync(path.join(outside, "secret.txt"), "utf8"), "top secret")
      assert.isFalse(fs.existsSync(path.join(path.dirname(w.workspace), "x")))
    })
  )
})
