import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Stream } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { resolveInWorkspace } from "../../src/tools/Workspace.js"
import { walk } from "../../src/tools/Walk.js"
import { makeFence } from "../../src/tools/WorkspaceFence.js"
import { tempDir } from "../support/Hub.js"

const failureMessage = <A>(exit: Exit.Exit<A, { readonly message: string }>) =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error.message : `unexpected: ${String(exit)}`

describe("resolveInWorkspace", () => {
  const wsDir = tempDir("kiris-ws-")
  const ws = { workspace: wsDir, fence: makeFence({ privateDirs: [], ownFiles: path.join(wsDir, "none"), otherWorkspaces: [] }) }
  const outside = tempDir("kiris-outside-")
  fs.mkdirSync(path.join(wsDir, "src"))
  fs.writeFileSync(path.join(wsDir, "src", "a.ts"), "a")
  fs.writeFileSync(path.join(outside, "secret.txt"), "secret")
  fs.symlinkSync(outside, path.join(wsDir, "out-dir"))
  fs.symlinkSync(path.join(outside, "secret.txt"), path.join(wsDir, "out-file"))
  fs.symlinkSync(path.join(wsDir, "src"), path.join(wsDir, "in-dir"))

  it.effect("resolves relative and absolute paths inside the workspace", () =>
    Effect.gen(function* () {
      const real = fs.realpathSync(wsDir)
      const rel = yield* resolveInWorkspace(ws, "src/./a.ts")
      assert.deepStrictEqual(rel, { absolute: path.join(real, "src", "a.ts"), relative: "src/a.ts" })
      const abs = yield* resolveInWorkspace(ws, path.join(wsDir, "src", "a.ts"))
      assert.strictEqual(abs.relative, "src/a.ts")
      assert.strictEqual((yield* resolveInWorkspace(ws, ".")).relative, ".")
      assert.strictEqual((yield* resolveInWorkspace(ws, "src/../src/new/file.txt")).relative, "src/new/file.txt")
      assert.strictEqual((yield* resolveInWorkspace(ws, "in-dir/a.ts")).relative, "src/a.ts")
    })
  )

  it.effect("refuses `..` escapes", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(resolveInWorkspace(ws, "../x"))
      assert.strictEqual(failureMessage(exit), "path escapes the workspace: ../x")
      const deep = yield* Effect.exit(resolveInWorkspace(ws, "src/../../etc/passwd"))
      assert.match(failureMessage(deep), /escapes the workspace/)
    })
  )

  it.effect("refuses absolute paths outside", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(resolveInWorkspace(ws, "/etc/passwd"))
      assert.strictEqual(failureMessage(exit), "path is outside the workspace: /etc/passwd")
    })
  )

  it.effect("refuses symlinks that point outside, for existing and new paths", () =>
    Effect.gen(function* () {
      assert.match(failureMessage(yield* Effect.exit(resolveInWorkspace(ws, "out-file"))), /outside the workspace through a symlink/)
      assert.match(failureMessage(yield* Effect.exit(resolveInWorkspace(ws, "out-dir/secret.txt"))), /through a symlink/)
      assert.match(failureMessage(yield* Effect.exit(resolveInWorkspace(ws, "out-dir/new/file.txt"))), /through a symlink/)
    })
  )
})

describe("WorkspaceFence", () => {
  // A workspace holding a hub-private directory, another project's workspace and the project's own files.
  const wsDir = fs.realpathSync(tempDir("kiris-fenced-"))
  const hub = path.join(wsDir, "hub")
  const own = path.join(hub, "projects", "prj_own", "files")
  const other = path.join(wsDir, "other")
  fs.mkdirSync(own, { recursive: true })
  fs.mkdirSync(other)
  fs.writeFileSync(path.join(hub, "admin.key"), "kiris_secret")
  fs.writeFileSync(path.join(own, "mine.txt"), "mine")
  fs.writeFileSync(path.join(other, "theirs.txt"), "theirs")
  fs.symlinkSync(path.join(hub, "admin.key"), path.join(wsDir, "key-link"))
  fs.symlinkSync(hub, path.join(wsDir, "hub-link"))
  fs.symlinkSync(other, path.join(wsDir, "other-link"))
  fs.symlinkSync(wsDir, path.join(wsDir, "self"))
  const fence = makeFence({ privateDirs: [hub], ownFiles: own, otherWorkspaces: [other] })
  const scope = { workspace: wsDir, fence }

  it.effect("refuses private and other projects' paths however they are reached", () =>
    Effect.gen(function* () {
      for (const input of [
        "hub",
        "hub/admin.key",
        path.join(hub, "admin.key"),
        "key-link",
        "hub-link/admin.key",
        "hub-link/new.txt",
        "self/hub/admin.key",
        "other/../hub/admin.key",
        "hub/projects/prj_own",
        "other",
        "other/theirs.txt",
        "other-link/theirs.txt",
        "self/other/new/file.txt"
      ]) {
        assert.match(failureMessage(yield* Effect.exit(resolveInWorkspace(scope, input))), /^access denied: /, input)
      }
    })
  )

  it.effect("keeps the project's own files inside the private directory usable", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* resolveInWorkspace(scope, "hub/projects/prj_own/files/mine.txt")).relative, "hub/projects/prj_own/files/mine.txt")
      const ownScope = { workspace: own, fence }
      assert.strictEqual((yield* resolveInWorkspace(ownScope, "mine.txt")).absolute, path.join(own, "mine.txt"))
      assert.strictEqual((yield* resolveInWorkspace(ownScope, "new/file.txt")).relative, "new/file.txt")
      assert.strictEqual((yield* resolveInWorkspace(scope, "key-link-not-there/x")).relative, "key-link-not-there/x")
    })
  )

  it.effect("hides denied subtrees from walks", () =>
    Effect.gen(function* () {
      const seen = yield* Stream.runCollect(Stream.map(walk(wsDir, 10, fence), (e) => e.rel))
      assert.deepStrictEqual(Chunk.toReadonlyArray(seen), ["hub-link", "key-link", "other-link", "self"])
    })
  )
})
