import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type { MessageId } from "../../src/domain/Ids.js"
import { FileService } from "../../src/files/FileService.js"
import { ProjectDb } from "../../src/storage/ProjectDb.js"
import { startHub, startHubWithIdleModel, tempDir, type TestHub } from "../support/Hub.js"
import { type Finished, runKiris } from "../support/KirisProcess.js"

/**
 * `kiris files …` and `kiris revert` as a user runs them: a real CLI process talking TCP RPC to a
 * hub in this process, checked by the files it writes, what it prints and its exit codes.
 */

const kiris = (hub: TestHub, cwd: string, args: ReadonlyArray<string>) =>
  runKiris([...args, "--hub", `127.0.0.1:${hub.tcpPort}`, "--token", hub.adminKey], { cwd })

const ok = (run: Finished) => {
  assert.strictEqual(run.code, 0, `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`)
  assert.strictEqual(run.stderr, "")
  return run.stdout
}

describe("kiris files and kiris revert", () => {
  it.scopedLive(
    "upload and download round-trip a binary file; ls, cat, history and diff print what the hub recorded",
    () =>
      Effect.gen(function* () {
        const hub = yield* startHub()
        const admin = yield* hub.tcpClient()
        const project = yield* admin.project.create({ name: "demo" })
        const cwd = tempDir("kiris-cwd-")
        const bytes = crypto.randomBytes(50_000)
        bytes[0] = 0
        bytes[1] = 0xff
        fs.writeFileSync(path.join(cwd, "data.bin"), bytes)

        const uploaded = ok(yield* kiris(hub, cwd, ["files", "upload", "data.bin", "docs/data.bin", "--project", "demo"]))
        assert.match(uploaded.trim(), /^uploaded data\.bin to docs\/data\.bin \(version \d+, 50000 bytes\)$/)
        assert.isTrue(fs.readFileSync(path.join(project.workspace, "docs", "data.bin")).equals(bytes))

        ok(yield* kiris(hub, cwd, ["files", "download", "docs/data.bin", "copy.bin", "--project", project.id]))
        assert.isTrue(fs.readFileSync(path.join(cwd, "copy.bin")).equals(bytes))

        fs.writeFileSync(path.join(cwd, "notes.txt"), "alpha\nbeta\n")
        ok(yield* kiris(hub, cwd, ["files", "upload", "notes.txt", "--project", "demo"]))
        fs.writeFileSync(path.join(cwd, "notes.txt"), "alpha\ngamma\n")
        ok(yield* kiris(hub, cwd, ["files", "upload", "notes.txt", "--project", "demo"]))

        const root = ok(yield* kiris(hub, cwd, ["files", "ls", "--project", "demo"]))
        assert.match(root, /docs\//)
        assert.match(root, /notes\.txt\s+12\s+\d+/)
        assert.strictEqual(ok(yield* kiris(hub, cwd, ["files", "cat", "notes.txt", "--project", "demo"])), "alpha\ngamma\n")

        const history = JSON.parse(ok(yield* kiris(hub, cwd, ["files", "history", "notes.txt", "--project", "demo", "--json"]))) as {
          versions: Array<{ id: number }>
        }
        const [newer, older] = history.versions.map((v) => v.id)
        assert.strictEqual(history.versions.length, 2)
        assert.strictEqual(ok(yield* kiris(hub, cwd, ["files", "cat", "notes.txt", "--at", String(older), "--project", "demo"])), "alpha\nbeta\n")
        const table = ok(yield* kiris(hub, cwd, ["files", "history", "notes.txt", "--project", "demo"]))
        assert.match(table, /VERSION\s+WHEN\s+SIZE\s+AUTHOR\s+HASH/)
        assert.match(table, /user usr_/)
        const diff = ok(yield* kiris(hub, cwd, ["files", "diff", "notes.txt", String(older), String(newer), "--project", "demo"]))
        assert.match(diff, /^-beta$/m)
        assert.match(diff, /^\+gamma$/m)

        const refused = yield* kiris(hub, cwd, ["files", "cat", "../etc/passwd", "--project", "demo"])
        assert.strictEqual(refused.code, 1)
        assert.match(refused.stderr, /^error: PathRefused: .*escapes the workspace/m)

        // A file larger than an RPC frame: the error says how to upload it instead.
        const small = yield* startHub({ maxFrameBytes: 64 * 1024 })
        yield* (yield* small.tcpClient()).project.create({ name: "demo" })
        const tooBig = yield* kiris(small, cwd, ["files", "upload", "data.bin", "--project", "demo"])
        assert.strictEqual(tooBig.code, 1)
        assert.match(
          tooBig.stderr,
          /^error: data\.bin is too large to send over RPC \(.*\); upload it with PUT \/api\/projects\/prj_\S+\/files\/data\.bin/m
        )

        const help = ok(yield* kiris(hub, cwd, ["files", "--help"]))
        for (const sub of ["ls", "cat", "history", "diff", "upload", "download"]) assert.include(help, sub)
      }),
    240_000
  )

  it.scopedLive(
    "revert refuses over someone else's change, naming the file and --force, and reverts with --force",
    () =>
      Effect.gen(function* () {
        const hub = yield* startHubWithIdleModel()
        const admin = yield* hub.tcpClient()
        const project = yield* admin.project.create({ name: "demo" })
        const cwd = tempDir("kiris-cwd-")
        yield* admin.file.write({ projectId: project.id, path: "app.ts", content: "original\n" })
        const session = yield* admin.session.create({ projectId: project.id })
        // The session's agent edits the file (as its write tool does), and its turn ends.
        yield* Effect.gen(function* () {
          const files = yield* FileService
          const dbs = yield* ProjectDb
          yield* dbs.withProject(project.id)(
            Effect.zipRight(
              files.write({
                workspace: project.workspace,
                path: "app.ts",
                content: new Uint8Array(Buffer.from("agent\n")),
                author: { kind: "session", sessionId: session.id, messageId: "msg_agent" as MessageId, toolCallId: "call_1" }
              }),
              files.releaseLocks({ sessionId: session.id })
            )
          )
        }).pipe(Effect.provide(hub.context), Effect.orDie)
        yield* admin.file.write({ projectId: project.id, path: "app.ts", content: "human\n" })

        const conflict = yield* kiris(hub, cwd, ["revert", session.id, "--project", "demo"])
        assert.strictEqual(conflict.code, 1)
        assert.match(conflict.stderr, /changed by someone else/)
        assert.match(conflict.stderr, /^ {2}app\.ts$/m)
        assert.match(conflict.stderr, /--force/)
        assert.strictEqual(fs.readFileSync(path.join(project.workspace, "app.ts"), "utf8"), "human\n")

        const forced = ok(yield* kiris(hub, cwd, ["revert", session.id, "--project", "demo", "--force"]))
        assert.match(forced, /^reverted 1 file:\n {2}app\.ts\nsnapshot \d+ holds the files as they were before the revert\n$/)
        assert.strictEqual(fs.readFileSync(path.join(project.workspace, "app.ts"), "utf8"), "original\n")
      }),
    240_000
  )
})
