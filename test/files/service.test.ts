import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { ServerConfigShape } from "../../src/config/ServerConfig.js"
import { FileAuthor } from "../../src/domain/File.js"
import { MessageId, SessionId, UserId } from "../../src/domain/Ids.js"
import { startHub, tempDir } from "../support/Hub.js"
import { type Backend, backendConfig, backends } from "../support/Pg.js"
import { decode, text, withFiles } from "./support.js"

/**
 * FileService against a real hub's project (temp data dir and workspace): content addressing,
 * the size cap and quota, retention, binary files, history paging, change detection, locks and
 * path confinement.
 */

const user: FileAuthor = { kind: "user", userId: UserId.make("usr_tester") }
const sessionAuthor = (sessionId: string, messageId: string): FileAuthor => ({
  kind: "session",
  sessionId: SessionId.make(sessionId),
  messageId: MessageId.make(messageId),
  toolCallId: null
})

const setup = (backend: Backend, options: Partial<ServerConfigShape> = {}) =>
  Effect.gen(function* () {
    const hub = yield* startHub({ workspaceRoots: [os.tmpdir()], ...(yield* backendConfig(backend)), ...options })
    const admin = yield* hub.tcpClient()
    const workspace = fs.realpathSync(tempDir("kiris-files-svc-"))
    const project = yield* admin.project.create({ name: "svc", description: "", workspace })
    const files = withFiles(hub, project.id)
    const blobDir = path.join(hub.dataDir, "projects", project.id, "blobs")
    const blobFiles = () =>
      fs.existsSync(blobDir)
        ? fs
            .readdirSync(blobDir, { recursive: true, withFileTypes: true })
            .filter((d) => d.isFile())
            .map((d) => d.name)
        : []
    return { hub, workspace, project, files, blobDir, blobFiles }
  })

const sha = (s: string | Uint8Array) => crypto.createHash("sha256").update(s).digest("hex")

describe.each(backends)("FileService on %s", (backend) => {
  it.scopedLive("stores each content once, by sha256, next to the project database and outside the workspace", () =>
    Effect.gen(function* () {
      const { workspace, files, blobDir, blobFiles } = yield* setup(backend)
      const v1 = yield* files((f) => f.write({ workspace, path: "a.txt", content: text("same\n"), author: user }))
      const v2 = yield* files((f) => f.write({ workspace, path: "dir/b.txt", content: text("same\n"), author: user }))
      const v3 = yield* files((f) => f.write({ workspace, path: "a.txt", content: text("other\n"), author: user }))
      assert.strictEqual(v1.hash, sha("same\n"))
      assert.strictEqual(v2.hash, v1.hash)
      assert.strictEqual(v3.hash, sha("other\n"))
      assert.isTrue(v1.id < v2.id && v2.id < v3.id)
      assert.deepStrictEqual(blobFiles().sort(), [sha("same\n"), sha("other\n")].sort())
      assert.isTrue(path.relative(workspace, blobDir).startsWith(".."), "blobs live outside the workspace")
      assert.strictEqual(fs.readFileSync(path.join(workspace, "dir/b.txt"), "utf8"), "same\n")
      const old = yield* files((f) => f.read({ workspace, path: "a.txt", version: v1.id }))
      assert.strictEqual(decode(old.content), "same\n")
      const entries = yield* files((f) => f.list({ workspace }))
      assert.deepStrictEqual(
        entries.map((e) => [e.name, e.type, e.latestVersion]),
        [
          ["dir", "dir", null],
          ["a.txt", "file", v3.id]
        ]
      )
    })
  )

  it.scopedLive("refuses files over fileMaxBytes and contents over fileQuotaBytes, and writes nothing then", () =>
    Effect.gen(function* () {
      const { workspace, files } = yield* setup(backend, { fileMaxBytes: 100, fileQuotaBytes: 250 })
      const tooLarge = yield* Effect.flip(files((f) => f.write({ workspace, path: "big.txt", content: new Uint8Array(101).fill(65), author: user })))
      assert.strictEqual(tooLarge._tag, "FileTooLarge")
      assert.isFalse(fs.existsSync(path.join(workspace, "big.txt")))

      yield* files((f) => f.write({ workspace, path: "one.txt", content: new Uint8Array(100).fill(66), author: user }))
      yield* files((f) => f.write({ workspace, path: "two.txt", content: new Uint8Array(100).fill(67), author: user }))
      const over = yield* Effect.flip(files((f) => f.write({ workspace, path: "three.txt", content: new Uint8Array(100).fill(68), author: user })))
      assert.strictEqual(over._tag, "QuotaExceeded")
      assert.isFalse(fs.existsSync(path.join(workspace, "three.txt")))
      // A content already stored costs nothing more.
      yield* files((f) => f.write({ workspace, path: "copy.txt", content: new Uint8Array(100).fill(66), author: user }))
      assert.strictEqual(fs.readFileSync(path.join(workspace, "copy.txt"), "utf8"), "B".repeat(100))
    })
  )

  it.scopedLive("pruning keeps the latest versions, snapshotted ones and what reverting a session's latest turn needs", () =>
    Effect.gen(function* () {
      const { workspace, files, blobFiles } = yield* setup(backend, { fileKeepVersions: 2, fileKeepDays: 365 })
      const ids: Array<number> = []
      for (let i = 1; i <= 6; i++) {
        ids.push((yield* files((f) => f.write({ workspace, path: "p.txt", content: text(`v${i}\n`), author: user }))).id)
        if (i === 2) yield* files((f) => f.snapshot({ label: "keep v2", author: user }))
      }
      const base = yield* files((f) => f.write({ workspace, path: "s.txt", content: text("base\n"), author: user }))
      yield* files((f) => f.write({ workspace, path: "s.txt", content: text("s1\n"), author: sessionAuthor("ses_a", "msg_1") }))
      yield* files((f) => f.write({ workspace, path: "s.txt", content: text("s2\n"), author: sessionAuthor("ses_a", "msg_2") }))
      yield* files((f) => f.write({ workspace, path: "s.txt", content: text("s3\n"), author: sessionAuthor("ses_a", "msg_2") }))
      yield* files((f) => f.releaseLocks({ sessionId: SessionId.make("ses_a") }))
      yield* files((f) => f.write({ workspace, path: "s.txt", content: text("user\n"), author: user }))
      yield* files((f) => f.write({ workspace, path: "s.txt", content: text("user again\n"), author: user }))

      yield* files((f) => f.prune())
      const kept = (yield* files((f) => f.history({ path: "p.txt" }))).versions.map((v) => v.id)
      assert.deepStrictEqual(kept, [ids[5], ids[4], ids[1]])
      assert.notInclude(blobFiles(), sha("v1\n"))
      assert.include(blobFiles(), sha("v2\n"))
      // ses_a's latest writing turn (msg_2) wrote s2 and s3 over s1: all three stay; base (beyond the newest two, not needed) goes.
      const sVersions = (yield* files((f) => f.history({ path: "s.txt" }))).versions.map((v) => v.id)
      const contents = yield* Effect.forEach(sVersions, (id) => files((f) => f.read({ workspace, path: "s.txt", version: id })))
      assert.deepStrictEqual(
        contents.map((c) => decode(c.content)),
        ["user again\n", "user\n", "s3\n", "s2\n", "s1\n"]
      )
      assert.isFalse(sVersions.includes(base.id))
      assert.isFalse(blobFiles().includes(sha("base\n")))
    })
  )

  it.scopedLive("a path rewritten many times stays bounded as it is written; versions past fileKeepDays go too", () =>
    Effect.gen(function* () {
      const { workspace, files, blobFiles } = yield* setup(backend, { fileKeepVersions: 5, fileKeepDays: 365 })
      for (let i = 1; i <= 40; i++) yield* files((f) => f.write({ workspace, path: "hot.txt", content: text(`v${i}\n`), author: user }))
      const kept = (yield* files((f) => f.history({ path: "hot.txt", limit: 100 }))).versions
      // Pruned once a tenth over what it keeps (at least one over): never more than 6 versions of 5 kept.
      assert.isAtMost(kept.length, 6)
      assert.isAtLeast(kept.length, 5)
      assert.strictEqual(decode((yield* files((f) => f.read({ workspace, path: "hot.txt" }))).content), "v40\n")
      assert.isAtMost(blobFiles().length, 6)
      assert.notInclude(blobFiles(), sha("v1\n"))

      // An age limit in the past: everything but the latest version of each path goes on prune.
      const aged = yield* setup(backend, { fileKeepVersions: 50, fileKeepDays: -1 })
      for (let i = 1; i <= 4; i++)
        yield* aged.files((f) => f.write({ workspace: aged.workspace, path: "old.txt", content: text(`o${i}\n`), author: user }))
      const pruned = yield* aged.files((f) => f.prune())
      assert.strictEqual(pruned.versions, 3)
      assert.deepStrictEqual(aged.blobFiles(), [sha("o4\n")])
    })
  )

  it.scopedLive("binary contents are versioned without a text diff; text versions diff as unified text", () =>
    Effect.gen(function* () {
      const { workspace, files } = yield* setup(backend)
      const b1 = yield* files((f) => f.write({ workspace, path: "img.bin", content: new Uint8Array([0, 1, 2, 3]), author: user }))
      const b2 = yield* files((f) => f.write({ workspace, path: "img.bin", content: new Uint8Array([0xff, 0xfe, 0x41]), author: user }))
      const binary = yield* files((f) => f.diff({ path: "img.bin", from: b1.id, to: b2.id }))
      assert.isTrue(binary.binary)
      assert.strictEqual(binary.unified, "")
      assert.deepStrictEqual([...(yield* files((f) => f.read({ workspace, path: "img.bin" }))).content], [0xff, 0xfe, 0x41])

      const t1 = yield* files((f) => f.write({ workspace, path: "t.txt", content: text("a\nb\nc\n"), author: user }))
      const t2 = yield* files((f) => f.write({ workspace, path: "t.txt", content: text("a\nB\nc\nd\n"), author: user }))
      const diff = yield* files((f) => f.diff({ path: "t.txt", from: t1.id, to: t2.id }))
      assert.isFalse(diff.binary)
      assert.include(diff.unified, "--- a/t.txt")
      assert.include(diff.unified, "+++ b/t.txt")
      assert.include(diff.unified, "-b\n+B\n c\n+d\n")
      const missing = yield* Effect.flip(files((f) => f.diff({ path: "t.txt", from: b1.id, to: t2.id })))
      assert.strictEqual(missing._tag, "NotFound")
    })
  )

  it.scopedLive("history pages newest first by version id", () =>
    Effect.gen(function* () {
      const { workspace, files } = yield* setup(backend)
      const ids: Array<number> = []
      for (let i = 0; i < 25; i++) ids.push((yield* files((f) => f.write({ workspace, path: "h.txt", content: text(`${i}`), author: user }))).id)
      yield* files((f) => f.write({ workspace, path: "unrelated.txt", content: text("x"), author: user }))
      const seen: Array<number> = []
      let cursor: number | undefined = undefined
      let pages = 0
      for (;;) {
        const page = yield* files((f) => f.history({ path: "h.txt", limit: 10, ...(cursor === undefined ? {} : { cursor }) }))
        seen.push(...page.versions.map((v) => v.id))
        pages++
        if (page.next === null) break
        cursor = page.next
      }
      assert.strictEqual(pages, 3)
      assert.deepStrictEqual(seen, [...ids].reverse())
    })
  )

  it.scopedLive("changes made on disk are noticed on read and write and recorded as external versions", () =>
    Effect.gen(function* () {
      const { workspace, files } = yield* setup(backend)
      const file = path.join(workspace, "e.txt")
      const v1 = yield* files((f) => f.write({ workspace, path: "e.txt", content: text("hub\n"), author: user }))
      fs.writeFileSync(file, "disk\n")
      const read = yield* files((f) => f.read({ workspace, path: "e.txt" }))
      assert.strictEqual(decode(read.content), "disk\n")
      assert.strictEqual(read.version?.author.kind, "external")
      // An unchanged file records nothing more.
      const again = yield* files((f) => f.read({ workspace, path: "e.txt" }))
      assert.strictEqual(again.version?.id, read.version?.id)

      fs.writeFileSync(file, "disk again\n")
      const stale = yield* Effect.flip(
        files((f) => f.write({ workspace, path: "e.txt", content: text("mine\n"), author: user, expectedVersion: read.version!.id }))
      )
      assert.strictEqual(stale._tag, "Conflict")
      assert.strictEqual(fs.readFileSync(file, "utf8"), "disk again\n")
      fs.rmSync(file)
      const gone = yield* Effect.flip(files((f) => f.read({ workspace, path: "e.txt" })))
      assert.strictEqual(gone._tag, "NotFound")
      const kinds = (yield* files((f) => f.history({ path: "e.txt" }))).versions.map((v) => [v.author.kind, v.deleted])
      assert.deepStrictEqual(kinds, [
        ["external", true],
        ["external", false],
        ["external", false],
        ["user", false]
      ])
      assert.strictEqual((yield* files((f) => f.history({ path: "e.txt" }))).versions.at(-1)?.id, v1.id)

      // A file never written through the hub is captured before its first overwrite.
      fs.writeFileSync(path.join(workspace, "pre.txt"), "pre-existing\n")
      yield* files((f) => f.write({ workspace, path: "pre.txt", content: text("overwritten\n"), author: user }))
      const pre = (yield* files((f) => f.history({ path: "pre.txt" }))).versions
      assert.deepStrictEqual(
        pre.map((v) => v.author.kind),
        ["user", "external"]
      )
      assert.strictEqual(decode((yield* files((f) => f.read({ workspace, path: "pre.txt", version: pre[1]!.id }))).content), "pre-existing\n")
    })
  )

  it.scopedLive("a session's lock holds off others' writes until released", () =>
    Effect.gen(function* () {
      const { workspace, files } = yield* setup(backend, { fileLockWaitMs: 50 })
      yield* files((f) => f.write({ workspace, path: "l.txt", content: text("a\n"), author: sessionAuthor("ses_a", "msg_a") }))
      yield* files((f) => f.write({ workspace, path: "l.txt", content: text("a2\n"), author: sessionAuthor("ses_a", "msg_a") }))
      const blocked = yield* Effect.flip(
        files((f) => f.write({ workspace, path: "l.txt", content: text("b\n"), author: sessionAuthor("ses_b", "msg_b") }))
      )
      assert.strictEqual(blocked._tag, "FileLocked")
      assert.strictEqual(blocked._tag === "FileLocked" ? blocked.holder : "", "ses_a")
      const byUser = yield* Effect.flip(files((f) => f.write({ workspace, path: "l.txt", content: text("u\n"), author: user })))
      assert.strictEqual(byUser._tag, "FileLocked")
      yield* files((f) => f.releaseLocks({ sessionId: SessionId.make("ses_a") }))
      yield* files((f) => f.write({ workspace, path: "l.txt", content: text("b\n"), author: sessionAuthor("ses_b", "msg_b") }))
      assert.strictEqual(fs.readFileSync(path.join(workspace, "l.txt"), "utf8"), "b\n")
      assert.deepStrictEqual(
        (yield* files((f) => f.locks())).map((l) => [l.path, l.sessionId]),
        [["l.txt", "ses_b"]]
      )
    })
  )

  it.scopedLive("paths leading out of the workspace are refused and nothing outside is touched", () =>
    Effect.gen(function* () {
      const { workspace, files, hub } = yield* setup(backend)
      const outside = fs.realpathSync(tempDir("kiris-files-outside-"))
      fs.writeFileSync(path.join(outside, "secret.txt"), "secret\n")
      fs.symlinkSync(outside, path.join(workspace, "link"))
      const attempts = [
        "../escape.txt",
        "a/../../escape.txt",
        path.join(outside, "secret.txt"),
        "link/secret.txt",
        "link/new.txt",
        ".",
        path.join(hub.dataDir, "admin.key")
      ]
      for (const p of attempts) {
        const w = yield* Effect.flip(files((f) => f.write({ workspace, path: p, content: text("pwned\n"), author: user })))
        assert.strictEqual(w._tag, "PathRefused", p)
        const r = yield* Effect.flip(files((f) => f.read({ workspace, path: p })))
        assert.strictEqual(r._tag, "PathRefused", p)
      }
      const l = yield* Effect.flip(files((f) => f.list({ workspace, dir: "../" })))
      assert.strictEqual(l._tag, "PathRefused")
      const viaLink = yield* Effect.flip(files((f) => f.list({ workspace, dir: "link" })))
      assert.strictEqual(viaLink._tag, "PathRefused")
      assert.strictEqual(fs.readFileSync(path.join(outside, "secret.txt"), "utf8"), "secret\n")
      assert.deepStrictEqual(fs.readdirSync(outside), ["secret.txt"])
      assert.isFalse(fs.existsSync(path.join(path.dirname(workspace), "escape.txt")))
    })
  )
})
