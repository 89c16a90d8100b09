import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { MessageId, SessionId } from "../../src/domain/Ids.js"
import type { Project } from "../../src/domain/Project.js"
import type { ToolOutput } from "../../src/domain/ToolOutput.js"
import { ProjectDb } from "../../src/storage/ProjectDb.js"
import { ToolRegistry } from "../../src/tools/ToolRegistry.js"
import { startHub, tempDir } from "../support/Hub.js"

const err = (out: ToolOutput, what: string): string => {
  if (out.ok) assert.fail(`${what}: expected a refusal, got: ${out.output}`)
  return out.error
}
const ok = (out: ToolOutput, what: string): string => {
  if (!out.ok) assert.fail(`${what}: expected success, got: ${out.error}`)
  return out.output
}

/**
 * A hub whose data dir lies inside the workspace of project `outer` (an admin's choice), with a
 * project `nested` whose workspace is a directory of `outer`'s, a project `plain` with its default
 * workspace in the data dir, and symlinks in `outer` pointing at all of them.
 */
const setup = Effect.gen(function* () {
  const parent = fs.realpathSync(tempDir("kiris-fence-"))
  const dataDir = path.join(parent, "hub")
  fs.mkdirSync(dataDir)
  const hub = yield* startHub({ dataDir, workspaceRoots: [os.tmpdir()] })
  const client = yield* hub.tcpClient()
  const caller = yield* client.user.whoami()
  const outer = yield* client.project.create({ name: "outer", description: "", workspace: parent })
  fs.mkdirSync(path.join(parent, "b"))
  fs.writeFileSync(path.join(parent, "b", "b-secret.txt"), "secret of nested\n")
  const nested = yield* client.project.create({ name: "nested", description: "", workspace: path.join(parent, "b") })
  const plain = yield* client.project.create({ name: "plain", description: "" })
  fs.writeFileSync(path.join(plain.workspace, "mine.txt"), "plain's own file\n")
  fs.writeFileSync(path.join(parent, "notes.txt"), "outer notes\n")
  for (const project of [outer, nested, plain]) {
    for (const tool of ["write", "edit"]) yield* client.permission.setRule({ projectId: project.id, tool, pattern: "*", action: "allow" })
  }
  const adminKeyFile = path.join(dataDir, "admin.key")
  fs.symlinkSync(dataDir, path.join(parent, "link-data"))
  fs.symlinkSync(adminKeyFile, path.join(parent, "link-key"))
  fs.symlinkSync(path.join(parent, "b"), path.join(parent, "link-nested"))
  fs.symlinkSync(plain.workspace, path.join(parent, "link-plain"))
  fs.symlinkSync(parent, path.join(parent, "alias"))
  const exec = (project: Project, name: string, input: unknown) =>
    Effect.flatMap(ProjectDb, (dbs) =>
      dbs.withProject(project.id)(
        Effect.flatMap(ToolRegistry, (r) =>
          r.execute(name, input, {
            projectId: project.id,
            sessionId: "ses_fence" as SessionId,
            messageId: "msg_fence" as MessageId,
            workspace: project.workspace,
            caller,
            abortSignal: new AbortController().signal
          })
        )
      )
    ).pipe(Effect.provide(hub.context))
  const secrets = [hub.adminKey, fs.readFileSync(path.join(dataDir, "jwt.secret"), "utf8").trim(), "secret of nested", "plain's own file"]
  const assertNoSecret = (text: string, what: string) => {
    for (const s of secrets) assert.notInclude(text, s, what)
  }
  return { hub, parent, dataDir, adminKeyFile, outer, nested, plain, exec, assertNoSecret }
})

/** Paths in `outer` that lead into the data dir or another project's workspace. */
const deniedPaths = (dataDir: string, plainId: string) => [
  "hub/admin.key",
  "./hub/jwt.secret",
  "hub/root.db",
  path.join(dataDir, "admin.key"),
  "link-key",
  "link-data/admin.key",
  "alias/hub/admin.key",
  "b/../hub/admin.key",
  `hub/projects/${plainId}/files/mine.txt`,
  "b/b-secret.txt",
  "link-nested/b-secret.txt",
  "link-plain/mine.txt",
  "alias/link-key"
]

describe("tools never reach the data dir or other projects' workspaces", () => {
  it.scopedLive("read refuses every route to a denied file", () =>
    Effect.gen(function* () {
      const { dataDir, plain, outer, exec, assertNoSecret } = yield* setup
      for (const p of deniedPaths(dataDir, plain.id)) {
        const message = err(yield* exec(outer, "read", { path: p }), `read ${p}`)
        assert.match(message, /^access denied: /, p)
        assertNoSecret(message, p)
      }
      assert.strictEqual(ok(yield* exec(outer, "read", { path: "notes.txt" }), "read notes.txt"), "     1\touter notes")
    })
  )

  it.scopedLive("write and edit refuse denied files and directories and change nothing", () =>
    Effect.gen(function* () {
      const { hub, dataDir, parent, adminKeyFile, plain, outer, exec } = yield* setup
      for (const p of [
        ...deniedPaths(dataDir, plain.id),
        "hub/planted.txt",
        "link-data/planted.txt",
        "link-nested/planted.txt",
        "link-plain/planted.txt"
      ]) {
        assert.match(err(yield* exec(outer, "write", { path: p, content: "overwritten" }), `write ${p}`), /^access denied: /, p)
      }
      for (const p of ["link-key", "hub/admin.key", "alias/hub/admin.key"]) {
        const edit = { path: p, oldString: hub.adminKey.slice(0, 8), newString: "changed" }
        assert.match(err(yield* exec(outer, "edit", edit), `edit ${p}`), /^access denied: /, p)
      }
      assert.match(
        err(yield* exec(outer, "edit", { path: "link-nested/b-secret.txt", oldString: "secret", newString: "x" }), "edit"),
        /^access denied: /
      )
      assert.strictEqual(fs.readFileSync(adminKeyFile, "utf8").trim(), hub.adminKey)
      assert.strictEqual(fs.readFileSync(path.join(parent, "b", "b-secret.txt"), "utf8"), "secret of nested\n")
      assert.strictEqual(fs.readFileSync(path.join(plain.workspace, "mine.txt"), "utf8"), "plain's own file\n")
      for (const planted of [path.join(dataDir, "planted.txt"), path.join(parent, "b", "planted.txt"), path.join(plain.workspace, "planted.txt")]) {
        assert.isFalse(fs.existsSync(planted), planted)
      }
    })
  )

  it.scopedLive("list, glob and grep neither enter nor show denied subtrees", () =>
    Effect.gen(function* () {
      const { outer, exec, assertNoSecret } = yield* setup
      for (const p of ["hub", "link-data", "alias/hub", "b", "link-nested", "link-plain", "hub/projects"]) {
        assert.match(err(yield* exec(outer, "list", { path: p }), `list ${p}`), /^access denied: /, p)
        assert.match(err(yield* exec(outer, "glob", { pattern: "**/*", path: p }), `glob ${p}`), /^access denied: /, p)
        assert.match(err(yield* exec(outer, "grep", { pattern: ".", path: p }), `grep ${p}`), /^access denied: /, p)
      }
      const listing = ok(yield* exec(outer, "list", { path: ".", depth: 10 }), "list .")
      assert.deepStrictEqual(listing.split("\n"), ["alias@", "link-data@", "link-key@", "link-nested@", "link-plain@", "notes.txt"])
      const globbed = ok(yield* exec(outer, "glob", { pattern: "**/*" }), "glob **/*")
      assert.deepStrictEqual(globbed.split("\n"), ["alias", "link-data", "link-key", "link-nested", "link-plain", "notes.txt"])
      assert.strictEqual(ok(yield* exec(outer, "glob", { pattern: "**/*.key" }), "glob **/*.key"), "no files matched")
      const grepped = ok(yield* exec(outer, "grep", { pattern: "." }), "grep .")
      assert.strictEqual(grepped, "notes.txt:1:outer notes")
      assert.strictEqual(ok(yield* exec(outer, "grep", { pattern: "kiris_" }), "grep kiris_"), "no matches")
      assertNoSecret(listing + globbed + grepped, "walks")
    })
  )

  it.scopedLive("a project keeps its own workspace, inside the data dir or nested in another's", () =>
    Effect.gen(function* () {
      const { plain, nested, exec } = yield* setup
      assert.strictEqual(ok(yield* exec(plain, "read", { path: "mine.txt" }), "plain read"), "     1\tplain's own file")
      assert.match(ok(yield* exec(plain, "write", { path: "sub/new.txt", content: "new" }), "plain write"), /^created sub\/new\.txt/)
      assert.strictEqual(ok(yield* exec(plain, "list", { path: ".", depth: 3 }), "plain list"), "mine.txt\nsub/\nsub/new.txt")
      assert.match(err(yield* exec(plain, "read", { path: "../project.db" }), "plain escape"), /escapes the workspace/)
      assert.strictEqual(ok(yield* exec(nested, "read", { path: "b-secret.txt" }), "nested read"), "     1\tsecret of nested")
      assert.strictEqual(ok(yield* exec(nested, "grep", { pattern: "secret" }), "nested grep"), "b-secret.txt:1:secret of nested")
    })
  )
})
