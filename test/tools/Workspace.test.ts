import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { resolveInWorkspace } from "../../src/tools/Workspace.js"
import { tempDir } from "../support/Hub.js"

const failureMessage = <A>(exit: Exit.Exit<A, { readonly message: string }>) =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error.message : `unexpected: ${String(exit)}`

describe("resolveInWorkspace", () => {
  const ws = tempDir("kiris-ws-")
  const outside = tempDir("kiris-outside-")
  fs.mkdirSync(path.join(ws, "src"))
  fs.writeFileSync(path.join(ws, "src", "a.ts"), "a")
  fs.writeFileSync(path.join(outside, "secret.txt"), "secret")
  fs.symlinkSync(outside, path.join(ws, "out-dir"))
  fs.symlinkSync(path.join(outside, "secret.txt"), path.join(ws, "out-file"))
  fs.symlinkSync(path.join(ws, "src"), path.join(ws, "in-dir"))

  it.effect("resolves relative and absolute paths inside the workspace", () =>
    Effect.gen(function* () {
      const real = fs.realpathSync(ws)
      const rel = yield* resolveInWorkspace(ws, "src/./a.ts")
      assert.deepStrictEqual(rel, { absolute: path.join(real, "src", "a.ts"), relative: "src/a.ts" })
      const abs = yield* resolveInWorkspace(ws, path.join(ws, "src", "a.ts"))
      assert.strictEqual(abs.relative, "src/a.ts")
      assert.strictEqual((yield* resolveInWorkspace(ws, ".")).relative, ".")
      assert.strictEqual((yield* resolveInWorkspace(ws, "src/../src/new/file.txt")).relative, "src/new/file.txt")
      assert.strictEqual((yield* resolveInWorkspace(ws, "in-dir/a.ts")).relative, "src/a.ts")
    }))

  it.effect("refuses `..` escapes", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(resolveInWorkspace(ws, "../x"))
      assert.strictEqual(failureMessage(exit), "path escapes the workspace: ../x")
      const deep = yield* Effect.exit(resolveInWorkspace(ws, "src/../../etc/passwd"))
      assert.match(failureMessage(deep), /escapes the workspace/)
    }))

  it.effect("refuses absolute paths outside", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(resolveInWorkspace(ws, "/etc/passwd"))
      assert.strictEqual(failureMessage(exit), "path is outside the workspace: /etc/passwd")
    }))

  it.effect("refuses symlinks that point outside, for existing and new paths", () =>
    Effect.gen(function* () {
      assert.match(failureMessage(yield* Effect.exit(resolveInWorkspace(ws, "out-file"))), /outside the workspace through a symlink/)
      assert.match(failureMessage(yield* Effect.exit(resolveInWorkspace(ws, "out-dir/secret.txt"))), /through a symlink/)
      assert.match(failureMessage(yield* Effect.exit(resolveInWorkspace(ws, "out-dir/new/file.txt"))), /through a symlink/)
    }))
})
