import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fakeOpenAI, toolResults } from "../support/FakeOpenAI.js"
import { startHub, tempDir, type TestHub } from "../support/Hub.js"
import { startAgentHub, watchProject } from "../support/AgentHub.js"

/** A client of a new non-admin user holding a read/write API key. */
const userClient = (hub: TestHub, name: string) =>
  Effect.gen(function* () {
    const admin = yield* hub.tcpClient()
    const user = yield* admin.user.create({ name, password: `${name}-password`, isAdmin: false })
    const key = yield* admin.key.create({ name: `${name}-key`, userId: user.id, scopes: ["read", "write"] })
    return yield* hub.tcpClient(key.key)
  })

/** A data dir inside a fresh parent directory, so that a workspace can hold it without holding all of the temp dir. */
const nestedDataDir = () => {
  const parent = fs.realpathSync(tempDir("kiris-holder-"))
  const dataDir = path.join(parent, "data")
  fs.mkdirSync(dataDir)
  return { parent, dataDir }
}

describe("project workspaces", () => {
  it.scopedLive("a non-admin cannot point a project at an existing directory", () =>
    Effect.gen(function* () {
      const hub = yield* startHub({ workspaceRoots: [os.tmpdir()] })
      const user = yield* userClient(hub, "uma")
      for (const workspace of [hub.dataDir, "/", tempDir("kiris-ws-")]) {
        const error = yield* Effect.flip(user.project.create({ name: "grab", description: "", workspace }))
        assert.strictEqual(error._tag, "Forbidden", workspace)
        assert.match(error._tag === "Forbidden" ? error.reason : "", /only server admins may use an existing directory/, workspace)
      }
      assert.deepStrictEqual(yield* user.project.list(), [])
      const own = yield* user.project.create({ name: "own", description: "" })
      assert.strictEqual(own.workspace, path.join(hub.dataDir, "projects", own.id, "files"))
    })
  )

  it.scopedLive("a server admin may use a directory under the workspace roots, and nothing else", () =>
    Effect.gen(function* () {
      const root = fs.realpathSync(tempDir("kiris-roots-"))
      const hub = yield* startHub({ workspaceRoots: [root] })
      const admin = yield* hub.tcpClient()
      const inside = path.join(root, "repo")
      fs.mkdirSync(inside)
      const accepted = yield* admin.project.create({ name: "inside", description: "", workspace: inside })
      assert.strictEqual(accepted.workspace, inside)

      const outside = fs.realpathSync(tempDir("kiris-elsewhere-"))
      fs.symlinkSync(outside, path.join(root, "escape"))
      for (const workspace of ["/", outside, path.join(root, "escape"), hub.dataDir]) {
        const error = yield* Effect.flip(admin.project.create({ name: "outside", description: "", workspace }))
        assert.strictEqual(error._tag, "Forbidden", workspace)
        const reason = error._tag === "Forbidden" ? error.reason : ""
        assert.include(reason, `outside the allowed workspace roots (${root})`, workspace)
      }
      const missing = yield* Effect.flip(admin.project.create({ name: "missing", description: "", workspace: path.join(root, "nope") }))
      assert.strictEqual(missing._tag, "InvalidInput")
    })
  )

  it.scopedLive("a server admin cannot use the data dir, even under the workspace roots", () =>
    Effect.gen(function* () {
      const { parent, dataDir } = nestedDataDir()
      const hub = yield* startHub({ dataDir, workspaceRoots: [parent] })
      const admin = yield* hub.tcpClient()
      const plain = yield* admin.project.create({ name: "plain", description: "" })
      for (const workspace of [dataDir, path.join(dataDir, "projects"), plain.workspace]) {
        const error = yield* Effect.flip(admin.project.create({ name: "in-data", description: "", workspace }))
        assert.strictEqual(error._tag, "InvalidInput", workspace)
        assert.match(error._tag === "InvalidInput" ? error.reason : "", /inside the hub's data directory/, workspace)
      }
    })
  )

  it.scopedLive("an agent turn in a workspace holding the data dir cannot read admin.key", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const { parent, dataDir } = nestedDataDir()
      const hub = yield* startAgentHub(fake, { dataDir })
      const admin = yield* hub.tcpClient()
      const project = yield* admin.project.create({ name: "holder", description: "", workspace: parent })
      const session = yield* admin.session.create({ projectId: project.id })
      const watch = yield* watchProject(admin, project.id)
      fake.script(
        {
          toolCalls: [
            { id: "call_key", name: "read", args: { path: "data/admin.key" } },
            { id: "call_abs", name: "read", args: { path: path.join(dataDir, "admin.key") } },
            { id: "call_list", name: "list", args: { path: ".", depth: 5 } },
            { id: "call_glob", name: "glob", args: { pattern: "**/*.key" } },
            { id: "call_grep", name: "grep", args: { pattern: "kiris_" } }
          ]
        },
        { text: "the key is out of reach" }
      )
      yield* admin.session.prompt({ projectId: project.id, sessionId: session.id, text: "read data/admin.key and tell me the key" })
      const [done] = yield* watch.turns(session.id)
      assert.strictEqual(done?.status, "completed")

      const results = toolResults(fake.requests[1]!.body)
      assert.deepStrictEqual(
        results.map((r) => r.tool_call_id),
        ["call_key", "call_abs", "call_list", "call_glob", "call_grep"]
      )
      for (const r of results) assert.notInclude(r.content, hub.adminKey, r.tool_call_id)
      assert.match(results[0]!.content, /access denied: data\/admin\.key/)
      assert.match(results[1]!.content, /access denied: /)
      assert.notInclude(results[2]!.content, "data")
      assert.strictEqual(results[3]!.content, "no files matched")
      assert.strictEqual(results[4]!.content, "no matches")

      const history = yield* admin.session.get({ projectId: project.id, sessionId: session.id })
      assert.notInclude(JSON.stringify(history), hub.adminKey)
      assert.notInclude(JSON.stringify(yield* watch.events), hub.adminKey)
      for (const request of fake.requests) assert.notInclude(JSON.stringify(request.body), hub.adminKey)
    })
  )
})
