import { Context, Option } from "effect"
import type { Role } from "./Auth.js"
import type { ProjectId, TaskId } from "./Ids.js"
import { agentRunsCommands } from "./AgentTask.js"
import type { TaskKind } from "./Task.js"

/**
 * What a caller needs to reach one RPC or REST operation. Every operation declares one next to its
 * schema (`Rpc.make(...).annotate(Requires, ...)`, `HttpApiEndpoint....annotate(Requires, ...)`);
 * the server's one authorization path reads it, checks it and opens the project scope. An
 * operation without a declaration cannot be called.
 *
 * - `scope`: the API-key scope the operation needs (`read` to look, `write` to change). Login
 *   tokens carry every scope; a key with the `admin` scope too.
 * - Worker keys reach only `Worker` operations (and `Self`); no other principal reaches those.
 */
export type Requirement =
  /** No credentials (password login). */
  | { readonly _tag: "Public" }
  /** Any authenticated principal, worker keys included; the answer is about the caller only. */
  | { readonly _tag: "Self" }
  /** Any user or API key with `scope`. */
  | { readonly _tag: "Authenticated"; readonly scope: AccessScope }
  /** Server admins only (a key needs the `admin` scope). */
  | { readonly _tag: "ServerAdmin"; readonly scope: AccessScope }
  /**
   * At least `role` in every project the input names (`projects`), plus the `execute` grant when
   * `execute` says the input runs commands. When the input names exactly one project, the handler
   * runs inside that project's database scope. `optional`: an input naming no project is allowed
   * (the service then limits itself to the projects the caller can see).
   */
  | {
      readonly _tag: "Project"
      readonly role: Role
      readonly scope: AccessScope
      readonly projects: (input: never) => ReadonlyArray<ProjectId>
      readonly optional: boolean
      readonly execute: ((input: never) => boolean) | undefined
    }
  /** At least `role` in the projects of the tasks the input names. */
  | { readonly _tag: "Tasks"; readonly role: Role; readonly scope: AccessScope; readonly taskIds: (input: never) => ReadonlyArray<TaskId> }
  /** A worker key (scope `worker`); which projects it serves is the queue's business. */
  | { readonly _tag: "Worker" }

export type AccessScope = "read" | "write"

/**
 * Selectors are declared over their operation's decoded input and stored with the input type
 * erased (`never`); the authorization path calls them with that operation's input only.
 */
export const select = <A>(selector: (input: never) => A, input: unknown): A => (selector as (input: unknown) => A)(input)

/** The annotation key under which operations declare their requirement. */
export class Requires extends Context.Tag("kiris/Requires")<Requires, Requirement>() {}

export const requirementOf = (annotations: Context.Context<never>): Option.Option<Requirement> =>
  Context.getOption(annotations as Context.Context<Requires>, Requires)

const byProjectId = (input: { readonly projectId?: ProjectId | undefined }) => (input.projectId === undefined ? [] : [input.projectId])

/** Constructors, so that declarations read as one line next to each schema. */
export const Access = {
  public: { _tag: "Public" } as Requirement,
  self: { _tag: "Self" } as Requirement,
  authenticated: (scope: AccessScope): Requirement => ({ _tag: "Authenticated", scope }),
  serverAdmin: (scope: AccessScope): Requirement => ({ _tag: "ServerAdmin", scope }),
  /** `role` in the project named by the input's `projectId` (or by `projects(input)`). */
  project: (
    role: Role,
    scope: AccessScope,
    options: {
      readonly projects?: (input: never) => ReadonlyArray<ProjectId>
      readonly optional?: boolean
      readonly execute?: (input: never) => boolean
    } = {}
  ): Requirement => ({
    _tag: "Project",
    role,
    scope,
    projects: options.projects ?? byProjectId,
    optional: options.optional ?? false,
    execute: options.execute
  }),
  tasks: (role: Role, scope: AccessScope, taskIds: (input: never) => ReadonlyArray<TaskId>): Requirement => ({
    _tag: "Tasks",
    role,
    scope,
    taskIds
  }),
  worker: { _tag: "Worker" } as Requirement
} as const

const commandKinds: ReadonlyArray<TaskKind> = ["shell", "python"]

/**
 * Whether a task runs commands of the caller's choosing on a worker: shell and python tasks, cli
 * tasks with a custom command template or with `adapterArgs` (flags that can lift an adapter's
 * sandbox or make it start other programs), and agent tasks whose turn may call `bash`. Those need
 * the `execute` grant.
 */
export const runsCommands = (kind: TaskKind, payload: unknown): boolean => {
  if (commandKinds.includes(kind)) return true
  if (kind === "agent") return agentRunsCommands(payload)
  if (kind !== "cli" || typeof payload !== "object" || payload === null) return false
  const cli = payload as { adapter?: unknown; adapterArgs?: unknown }
  return cli.adapter === "custom" || cli.adapterArgs !== undefined
}
