import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option, Redacted } from "effect"
import { randomToken } from "../auth/Crypto.js"
import { Scope } from "../domain/Auth.js"
import { NotFound } from "../domain/Errors.js"
import type { ApiKeyId, ProjectId } from "../domain/Ids.js"
import type { ApiKeyInfo, User } from "../domain/User.js"
import type { HubRpcClient } from "../client/HubClient.js"
import { CliError, clientOptions, output, outputOptions, withClient } from "./ClientOptions.js"
import { formatFields, formatTable, formatTime } from "./Table.js"

/** `kiris user …`, `kiris key …` and `kiris whoami`: accounts and API keys, over the hub's RPC protocol. */

const userTable = (users: ReadonlyArray<User>) =>
  formatTable(users, [
    { header: "id", value: (u) => u.id },
    { header: "name", value: (u) => u.name },
    { header: "admin", value: (u) => (u.isAdmin ? "yes" : "no") },
    { header: "created", value: (u) => formatTime(u.createdAt) }
  ])

const keyTable = (keys: ReadonlyArray<ApiKeyInfo>) =>
  formatTable(keys, [
    { header: "id", value: (k) => k.id },
    { header: "name", value: (k) => k.name },
    { header: "user id", value: (k) => k.userId },
    { header: "prefix", value: (k) => `${k.prefix}…` },
    { header: "scopes", value: (k) => k.scopes.join(",") },
    { header: "projects", value: (k) => (k.projects === undefined ? "all" : k.projects.join(",")) },
    { header: "created", value: (k) => formatTime(k.createdAt) },
    { header: "last used", value: (k) => formatTime(k.lastUsedAt) },
    { header: "revoked", value: (k) => formatTime(k.revokedAt) }
  ])

const readStdin = Effect.async<string, CliError>((resume) => {
  if (process.stdin.isTTY) {
    resume(Effect.fail(new CliError({ message: "--password-stdin expects the password piped on standard input" })))
    return
  }
  const chunks: Array<Buffer> = []
  const onData = (chunk: Buffer) => chunks.push(chunk)
  const onEnd = () =>
    resume(
      Effect.succeed(
        Buffer.concat(chunks)
          .toString("utf8")
          .replace(/\r?\n$/, "")
      )
    )
  const onError = (e: Error) => resume(Effect.fail(new CliError({ message: `cannot read standard input: ${e.message}` })))
  process.stdin.on("data", onData).once("end", onEnd).once("error", onError)
  return Effect.sync(() => {
    process.stdin.off("data", onData).off("end", onEnd).off("error", onError)
    process.stdin.pause()
  })
})

const userAdd = Command.make(
  "add",
  {
    ...clientOptions,
    ...outputOptions,
    name: Args.text({ name: "name" }).pipe(Args.withDescription("User name (letters, digits, _ . @ -)")),
    password: Options.redacted("password").pipe(
      Options.withPseudoName("PASSWORD"),
      Options.withDescription("Password (at least 8 characters); visible to other local users in the process list, prefer --password-stdin"),
      Options.optional
    ),
    passwordStdin: Options.boolean("password-stdin").pipe(Options.withDescription("Read the password from standard input")),
    admin: Options.boolean("admin").pipe(Options.withDescription("Make the user a server admin (acts as owner in every project)"))
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        if (o.passwordStdin && Option.isSome(o.password))
          return yield* new CliError({ message: "give either --password or --password-stdin, not both" })
        const generated = !o.passwordStdin && Option.isNone(o.password)
        const password = o.passwordStdin ? yield* readStdin : Option.match(o.password, { onSome: Redacted.value, onNone: () => randomToken(15) })
        const user = yield* client.user.create({ name: o.name, password, isAdmin: o.admin })
        yield* output(o.json, generated ? { user, password } : { user }, () =>
          generated ? `${userTable([user])}\n\npassword (generated, shown only once): ${password}` : userTable([user])
        )
      })
    )
).pipe(Command.withDescription("Create a user (server admins only); without a password option one is generated and printed once"))

const userList = Command.make("list", { ...clientOptions, ...outputOptions }, (o) =>
  withClient(o, (client) => client.user.list().pipe(Effect.flatMap((users) => output(o.json, users, () => userTable(users)))))
).pipe(Command.withDescription("List users (server admins only)"))

const userDelete = Command.make(
  "delete",
  { ...clientOptions, user: Args.text({ name: "user" }).pipe(Args.withDescription("User name or id")) },
  (o) => withClient(o, (client) => Effect.zipRight(client.user.delete({ user: o.user }), Console.log(`deleted user ${o.user}`)))
).pipe(Command.withDescription("Delete a user with their API keys and memberships; their open connections lose access at once (server admins only)"))

export const userCommand = Command.make("user").pipe(
  Command.withDescription("Manage user accounts"),
  Command.withSubcommands([userAdd, userList, userDelete])
)

/** Finds a user by name or id (needs a server admin, as does creating a key for someone else). */
const findUser = (client: HubRpcClient, nameOrId: string) =>
  client.user.list().pipe(
    Effect.flatMap((users) => {
      const user = users.find((u) => u.name === nameOrId) ?? users.find((u) => u.id === nameOrId)
      return user ? Effect.succeed(user) : Effect.fail(new NotFound({ entity: "user", id: nameOrId }))
    })
  )

const keyCreate = Command.make(
  "create",
  {
    ...clientOptions,
    ...outputOptions,
    name: Args.text({ name: "name" }).pipe(Args.withDescription("A name to recognise the key by")),
    scopes: Options.choice("scope", Scope.literals).pipe(
      Options.repeated,
      Options.withDescription(
        "Scope to grant; repeat for several (admin: everything its user may do; read; write; execute: run shell/python tasks; worker: a swarm worker). Default: read and write"
      )
    ),
    user: Options.text("user").pipe(
      Options.withPseudoName("USER"),
      Options.withDescription("Create the key for this user (name or id; server admins only); default yourself"),
      Options.optional
    ),
    projects: Options.text("project").pipe(
      Options.withPseudoName("ID"),
      Options.repeated,
      Options.withDescription(
        "Limit the key to this project (repeat for several; each one the key's user is a member of). A worker key serves only these. Default: every project its user may use"
      )
    )
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const userId = Option.isSome(o.user) ? Option.some((yield* findUser(client, o.user.value)).id) : Option.none()
        const created = yield* client.key.create({
          name: o.name,
          ...(o.scopes.length > 0 ? { scopes: o.scopes } : {}),
          ...(Option.isSome(userId) ? { userId: userId.value } : {}),
          ...(o.projects.length > 0 ? { projects: o.projects.map((p) => p as ProjectId) } : {})
        })
        yield* output(o.json, created, () =>
          [keyTable([created.info]), "", "API key (shown only once; store it now, e.g. export KIRIS_TOKEN=<key>):", "", `  ${created.key}`].join("\n")
        )
      })
    )
).pipe(Command.withDescription("Create an API key and print its secret once"))

const keyList = Command.make("list", { ...clientOptions, ...outputOptions }, (o) =>
  withClient(o, (client) => client.key.list().pipe(Effect.flatMap((keys) => output(o.json, keys, () => keyTable(keys)))))
).pipe(Command.withDescription("List API keys (yours; every key for server admins); secrets are never shown"))

const keyRevoke = Command.make(
  "revoke",
  { ...clientOptions, ...outputOptions, id: Args.text({ name: "id" }).pipe(Args.withDescription("Key id (key_…)")) },
  (o) =>
    withClient(o, (client) => client.key.revoke({ id: o.id as ApiKeyId }).pipe(Effect.flatMap((key) => output(o.json, key, () => keyTable([key])))))
).pipe(Command.withDescription("Revoke an API key; it stops working at once"))

export const keyCommand = Command.make("key").pipe(
  Command.withDescription("Manage API keys"),
  Command.withSubcommands([keyCreate, keyList, keyRevoke])
)

export const whoamiCommand = Command.make("whoami", { ...clientOptions, ...outputOptions }, (o) =>
  withClient(o, (client) =>
    client.user.whoami().pipe(
      Effect.flatMap((me) =>
        output(o.json, me, () =>
          formatFields([
            ["name", me.name],
            ["user id", me.userId],
            ["kind", me.kind],
            ["server admin", me.isAdmin ? "yes" : "no"],
            ["scopes", me.kind === "user" ? "all (signed in with a password)" : me.scopes.join(",")],
            ["key id", me.keyId ?? "-"]
          ])
        )
      )
    )
  )
).pipe(Command.withDescription("Show who the hub thinks you are"))
