import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import * as path from "node:path"
import { Role } from "../domain/Auth.js"
import type { ProjectId } from "../domain/Ids.js"
import type { Member, Project } from "../domain/Project.js"
import type { HubRpcClient } from "../client/HubClient.js"
import { CliError, clientOptions, output, outputOptions, withClient } from "./ClientOptions.js"
import { formatTable, formatTime } from "./Table.js"

/** `kiris project …` and `kiris member …`: projects and their members, over the hub's RPC protocol. */

const projectTable = (projects: ReadonlyArray<Project>) =>
  formatTable(projects, [
    { header: "id", value: (p) => p.id },
    { header: "name", value: (p) => p.name },
    { header: "role", value: (p) => p.role ?? "-" },
    { header: "created", value: (p) => formatTime(p.createdAt) },
    { header: "description", value: (p) => p.description }
  ])

const memberTable = (members: ReadonlyArray<Member>) =>
  formatTable(members, [
    { header: "user", value: (m) => m.userName },
    { header: "user id", value: (m) => m.userId },
    { header: "role", value: (m) => m.role },
    { header: "execute", value: (m) => (m.execute ? "yes" : "no") },
    { header: "added", value: (m) => formatTime(m.addedAt) }
  ])

const projectArg = Args.text({ name: "project" }).pipe(
  Args.withDescription("Project id (prj_…)"),
  Args.map((id) => id as ProjectId)
)
const userArg = Args.text({ name: "user" }).pipe(Args.withDescription("User name or id"))

const create = Command.make(
  "create",
  {
    ...clientOptions,
    ...outputOptions,
    name: Args.text({ name: "name" }).pipe(Args.withDescription("Project name")),
    description: Options.text("description").pipe(
      Options.withPseudoName("TEXT"),
      Options.withDescription("A line describing the project"),
      Options.optional
    ),
    workspace: Options.directory("workspace").pipe(
      Options.withPseudoName("DIR"),
      Options.withDescription(
        "Use this existing directory as the project's workspace (default: a new directory in the hub's data dir). Server admins only; " +
          "it must lie under one of the hub's workspaceRoots (default: the hub user's home directory) and outside its data dir"
      ),
      Options.optional
    )
  },
  (o) =>
    withClient(o, (client) =>
      client.project
        .create({
          name: o.name,
          description: Option.getOrElse(o.description, () => ""),
          ...(Option.isSome(o.workspace) ? { workspace: path.resolve(o.workspace.value) } : {})
        })
        .pipe(Effect.flatMap((project) => output(o.json, project, () => `${projectTable([project])}\n\nworkspace: ${project.workspace}`)))
    )
).pipe(Command.withDescription("Create a project (you become its owner)"))

const list = Command.make("list", { ...clientOptions, ...outputOptions }, (o) =>
  withClient(o, (client) => client.project.list().pipe(Effect.flatMap((projects) => output(o.json, projects, () => projectTable(projects)))))
).pipe(Command.withDescription("List the projects you can see (server admins see all)"))

/** A project named by its id (prj_…) or by its name, among the projects the caller sees. */
export const findProject = (client: HubRpcClient, ref: string) =>
  Effect.flatMap(client.project.list(), (projects) => {
    const byId = projects.find((p) => p.id === ref)
    if (byId !== undefined) return Effect.succeed(byId)
    const named = projects.filter((p) => p.name === ref)
    if (named.length === 1) return Effect.succeed(named[0]!)
    return Effect.fail(
      new CliError({
        message:
          named.length === 0
            ? `no project named or with id ${JSON.stringify(ref)} among yours (kiris project list)`
            : `${named.length} projects are named ${JSON.stringify(ref)}: name one by its id (${named.map((p) => p.id).join(", ")})`
      })
    )
  })

const projectRef = Args.text({ name: "project" }).pipe(Args.withDescription("Project name or id (prj_…)"))

const rename = Command.make(
  "rename",
  {
    ...clientOptions,
    ...outputOptions,
    project: projectRef,
    name: Args.text({ name: "new-name" }).pipe(Args.withDescription("The project's new name")),
    description: Options.text("description").pipe(
      Options.withPseudoName("TEXT"),
      Options.withDescription("Also change the description"),
      Options.optional
    )
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const project = yield* findProject(client, o.project)
        const updated = yield* client.project.update({
          projectId: project.id,
          name: o.name,
          ...(Option.isSome(o.description) ? { description: o.description.value } : {})
        })
        yield* output(o.json, updated, () => projectTable([updated]))
      })
    )
).pipe(Command.withDescription("Rename a project, or change its description (owners)"))

const remove = Command.make(
  "delete",
  {
    ...clientOptions,
    ...outputOptions,
    project: projectRef,
    confirm: Options.boolean("confirm").pipe(
      Options.withDescription("Confirm: the project's database, its sessions and its managed workspace are deleted for good")
    )
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const project = yield* findProject(client, o.project)
        if (!o.confirm) {
          return yield* new CliError({
            message:
              `this deletes project ${project.name} (${project.id}) with its database, sessions and managed workspace; ` +
              `run again with --confirm to go ahead`
          })
        }
        yield* client.project.delete({ projectId: project.id, confirm: project.name })
        yield* output(o.json, { projectId: project.id, name: project.name, deleted: true }, () => `deleted project ${project.name} (${project.id})`)
      })
    )
).pipe(
  Command.withDescription(
    "Delete a project (owners): its database, sessions and managed workspace. A workspace directory chosen with --workspace stays"
  )
)

export const projectCommand = Command.make("project").pipe(
  Command.withDescription("Create, list, rename and delete projects"),
  Command.withSubcommands([create, list, rename, remove])
)

const memberAdd = Command.make(
  "add",
  {
    ...clientOptions,
    ...outputOptions,
    project: projectArg,
    user: userArg,
    role: Options.choice("role", Role.literals).pipe(
      Options.withDescription("Role in the project: viewer (read), member (read and work), admin (manage members), owner; default member"),
      Options.withDefault("member" as const)
    ),
    execute: Options.boolean("execute").pipe(
      Options.withDescription(
        "Give the execute grant: the user may run commands (shell, python, custom cli tasks, the agent's bash tool) on this project's workers. " +
          "Given by server admins, or by project admins who hold it"
      )
    ),
    noExecute: Options.boolean("no-execute").pipe(Options.withDescription("Withdraw the execute grant"))
  },
  (o) =>
    withClient(o, (client) =>
      client.project
        .addMember({
          projectId: o.project,
          user: o.user,
          role: o.role,
          ...(o.execute ? { execute: true } : o.noExecute ? { execute: false } : {})
        })
        .pipe(Effect.flatMap((member) => output(o.json, member, () => memberTable([member]))))
    )
).pipe(Command.withDescription("Add a user to a project, or change their role or execute grant (needs admin in the project)"))

const memberRemove = Command.make("remove", { ...clientOptions, ...outputOptions, project: projectArg, user: userArg }, (o) =>
  withClient(o, (client) =>
    client.project
      .removeMember({ projectId: o.project, user: o.user })
      .pipe(Effect.zipRight(output(o.json, { projectId: o.project, user: o.user, removed: true }, () => `removed ${o.user} from ${o.project}`)))
  )
).pipe(Command.withDescription("Remove a user from a project (needs admin in the project)"))

const memberList = Command.make("list", { ...clientOptions, ...outputOptions, project: projectArg }, (o) =>
  withClient(o, (client) =>
    client.project.members({ projectId: o.project }).pipe(Effect.flatMap((members) => output(o.json, members, () => memberTable(members))))
  )
).pipe(Command.withDescription("List a project's members, their roles and who holds the execute grant"))

export const memberCommand = Command.make("member").pipe(
  Command.withDescription("Manage who belongs to a project"),
  Command.withSubcommands([memberAdd, memberRemove, memberList])
)
