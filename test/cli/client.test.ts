import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import type { ProjectId } from "../../src/domain/Ids.js"
import { startHub, tempDir, type TestHub } from "../support/Hub.js"
import { runKiris, type Finished } from "../support/KirisProcess.js"

/**
 * The `kiris` client commands as a user runs them: a real CLI process talking TCP RPC to a hub
 * (run in this process), checked by its printed tables, its `--json`, and its exit codes.
 */

const connection = (hub: TestHub, token = hub.adminKey) => ["--hub", `127.0.0.1:${hub.tcpPort}`, "--token", token]

const kiris = (hub: TestHub, args: ReadonlyArray<string>, options: { token?: string; stdin?: string } = {}) =>
  runKiris([...args, ...connection(hub, options.token)], {
    cwd: tempDir("kiris-cwd-"),
    ...(options.stdin !== undefined ? { stdin: options.stdin } : {})
  })

const ok = (run: Finished) => {
  assert.strictEqual(run.code, 0, `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`)
  assert.strictEqual(run.stderr, "")
  return run.stdout
}

const json = <A>(run: Finished): A => JSON.parse(ok(run)) as A

const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "")

/** Splits a table row on its two-space column gaps. */
const cells = (line: string) => line.trim().split(/\s{2,}/)

const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "")

/** A port nothing listens on. */
const closedPort = Effect.async<number>((resume) => {
  const server = net.createServer().listen(0, "127.0.0.1", () => {
    const port = (server.address() as net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

describe("kiris client commands", () => {
  it.scopedLive(
    "project and member commands print aligned tables and --json",
    () =>
      Effect.gen(function* () {
        const hub = yield* startHub()
        const admin = yield* hub.tcpClient()

        const created = lines(ok(yield* kiris(hub, ["project", "create", "demo", "--description", "first project"])))
        assert.deepStrictEqual(cells(created[0]!), ["ID", "NAME", "ROLE", "CREATED", "DESCRIPTION"])
        const [id, name, role, when, description] = cells(created[1]!)
        assert.match(id!, /^prj_/)
        assert.deepStrictEqual([name, role, description], ["demo", "owner", "first project"])
        assert.match(when!, /^\d{4}-\d\d-\d\d \d\d:\d\d$/)
        assert.strictEqual(created[0]!.indexOf("NAME"), created[1]!.indexOf("demo"))
        assert.strictEqual(created[2], `workspace: ${path.join(hub.dataDir, "projects", id!, "files")}`)

        const listed = json<Array<{ id: string; name: string; description: string }>>(yield* kiris(hub, ["project", "list", "--json"]))
        assert.deepStrictEqual(
          listed.map((p) => [p.id, p.name, p.description]),
          [[id, "demo", "first project"]]
        )

        yield* admin.user.create({ name: "carol", password: "carol-password", isAdmin: false })
        const added = lines(ok(yield* kiris(hub, ["member", "add", id!, "carol", "--role", "viewer", "--execute"])))
        assert.deepStrictEqual(cells(added[0]!), ["USER", "USER ID", "ROLE", "EXECUTE", "ADDED"])
        assert.deepStrictEqual(
          cells(added[1]!).filter((_, i) => i !== 1 && i !== 4),
          ["carol", "viewer", "yes"]
        )

        const members = json<Array<{ userName: string; role: string; execute: boolean }>>(yield* kiris(hub, ["member", "list", id!, "--json"]))
        assert.deepStrictEqual(
          members.map((m) => [m.userName, m.role, m.execute]),
          [
            ["admin", "owner", true],
            ["carol", "viewer", true]
          ]
        )

        assert.strictEqual(ok(yield* kiris(hub, ["member", "remove", id!, "carol"])).trim(), `removed carol from ${id}`)
        assert.deepStrictEqual(
          (yield* admin.project.members({ projectId: id as ProjectId })).map((m) => m.userName),
          ["admin"]
        )
      }),
    120_000
  )

  it.scopedLive(
    "user and key commands: password from stdin, a key printed once, list and revoke",
    () =>
      Effect.gen(function* () {
        const hub = yield* startHub()
        const admin = yield* hub.tcpClient()

        const added = lines(ok(yield* kiris(hub, ["user", "add", "dave", "--password-stdin"], { stdin: "dave-secret-pw\n" })))
        assert.deepStrictEqual(cells(added[0]!), ["ID", "NAME", "ADMIN", "CREATED"])
        assert.deepStrictEqual(cells(added[1]!).slice(1, 3), ["dave", "no"])
        const login = yield* Effect.promise(() =>
          fetch(`${hub.httpUrl}/api/auth/login`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ name: "dave", password: "dave-secret-pw" })
          })
        )
        assert.strictEqual(login.status, 200)

        const users = json<Array<{ name: string; isAdmin: boolean }>>(yield* kiris(hub, ["user", "list", "--json"]))
        assert.deepStrictEqual(
          users.map((u) => [u.name, u.isAdmin]),
          [
            ["admin", true],
            ["dave", false]
          ]
        )

        const createdOut = ok(yield* kiris(hub, ["key", "create", "ci", "--scope", "read", "--user", "dave"]))
        assert.include(createdOut, "shown only once")
        const secret = createdOut.match(/^ {2}(kiris_\S+)$/m)?.[1]
        assert.isDefined(secret, createdOut)
        const asDave = yield* hub.tcpClient(secret!)
        const me = yield* asDave.user.whoami()
        assert.deepStrictEqual([me.name, me.scopes], ["dave", ["read"]])

        const keysOut = ok(yield* kiris(hub, ["key", "list", "--json"]))
        assert.notInclude(keysOut, secret!)
        const keys = JSON.parse(keysOut) as Array<{ id: string; name: string; userId: string; scopes: Array<string>; revokedAt: number | null }>
        const ci = keys.find((k) => k.name === "ci")
        assert.deepStrictEqual([ci?.userId, ci?.scopes, ci?.revokedAt], [me.userId, ["read"], null])

        const whoami = lines(ok(yield* kiris(hub, ["whoami"], { token: secret! })))
        assert.includeMembers(whoami, ["name:         dave", "scopes:       read", `key id:       ${ci!.id}`])

        const revoked = lines(ok(yield* kiris(hub, ["key", "revoke", ci!.id])))
        assert.deepStrictEqual(cells(revoked[0]!).slice(-1), ["REVOKED"])
        assert.match(cells(revoked[1]!).slice(-1)[0]!, /^\d{4}-\d\d-\d\d \d\d:\d\d$/)
        const refused = yield* Effect.flip(asDave.user.whoami())
        assert.strictEqual(refused._tag, "Unauthorized")
        assert.strictEqual((yield* admin.key.list()).find((k) => k.id === ci!.id)?.revokedAt !== null, true)
      }),
    120_000
  )

  it.scopedLive(
    "failures print one error line and exit non-zero; credentials come from the environment or ./.kiris",
    () =>
      Effect.gen(function* () {
        const hub = yield* startHub()
        const admin = yield* hub.tcpClient()
        const project = yield* admin.project.create({ name: "guarded" })
        yield* admin.user.create({ name: "vic", password: "vic-password", isAdmin: false })
        yield* admin.project.addMember({ projectId: project.id, user: "vic", role: "viewer" })
        const vicKey = (yield* admin.key.create({
          name: "vic",
          scopes: ["read", "write"],
          userId: (yield* admin.user.list()).find((u) => u.name === "vic")!.id
        })).key

        const [badToken, forbidden, unreachable, anonymous, fromEnvAndFile] = yield* Effect.all(
          [
            kiris(hub, ["project", "list"], { token: "kiris_not-a-key" }),
            kiris(hub, ["member", "add", project.id, "vic", "--role", "admin"], { token: vicKey }),
            Effect.flatMap(closedPort, (port) => runKiris(["whoami", "--hub", `127.0.0.1:${port}`, "--token", hub.adminKey], { cwd: tempDir() })),
            runKiris(["whoami", "--hub", `127.0.0.1:${hub.tcpPort}`], { cwd: tempDir() }),
            Effect.gen(function* () {
              const cwd = tempDir()
              fs.mkdirSync(path.join(cwd, ".kiris"))
              fs.writeFileSync(path.join(cwd, ".kiris", "admin.key"), hub.adminKey + "\n")
              return yield* runKiris(["whoami", "--json"], { cwd, env: { KIRIS_HUB: `127.0.0.1:${hub.tcpPort}` } })
            })
          ],
          { concurrency: 2 }
        )

        for (const run of [badToken, forbidden, unreachable, anonymous]) {
          assert.strictEqual(run.code, 1, run.stderr)
          assert.strictEqual(run.stdout, "")
          assert.lengthOf(lines(run.stderr), 1, run.stderr)
          assert.notMatch(run.stderr, /\n\s+at /)
        }
        assert.strictEqual(badToken.stderr.trim(), "error: Unauthorized: unknown API key")
        assert.strictEqual(forbidden.stderr.trim(), `error: Forbidden: needs role admin in project ${project.id}, caller has viewer`)
        assert.match(unreachable.stderr.trim(), /^error: cannot reach hub at 127\.0\.0\.1:\d+: is `kiris serve` running\? \(ECONNREFUSED\)$/)
        assert.match(anonymous.stderr.trim(), /^error: not authenticated: pass --token <key>, set KIRIS_TOKEN/)
        const viaEnvAndFile = json<{ name: string; isAdmin: boolean; keyId: string }>(fromEnvAndFile)
        assert.deepStrictEqual([viaEnvAndFile.name, viaEnvAndFile.isAdmin, viaEnvAndFile.keyId], ["admin", true, (yield* admin.user.whoami()).keyId])
        assert.deepStrictEqual(
          (yield* admin.project.members({ projectId: project.id })).map((m) => m.role),
          ["owner", "viewer"]
        )
      }),
    120_000
  )

  it.scopedLive(
    "--help describes every command and option",
    () =>
      Effect.gen(function* () {
        const cwd = tempDir()
        const [top, memberAdd] = yield* Effect.all([runKiris(["--help"], { cwd }), runKiris(["member", "add", "--help"], { cwd })], {
          concurrency: 2
        })
        const topText = stripAnsi(ok(top))
        for (const command of [
          "project create",
          "project list",
          "member add",
          "member remove",
          "member list",
          "user add",
          "user list",
          "key create",
          "key list",
          "key revoke",
          "whoami"
        ]) {
          assert.match(topText, new RegExp(`- ${command} `), command)
        }
        const addText = stripAnsi(ok(memberAdd))
        for (const text of [
          "--hub HOST:PORT",
          "--token TOKEN",
          "--json",
          "--role viewer | member | admin | owner",
          "<project>",
          "<user>",
          "$KIRIS_HUB",
          "needs admin in the project"
        ]) {
          assert.include(addText, text)
        }
      }),
    60_000
  )
})
