import { Args, Command, Options } from "@effect/cli"
import { Effect } from "effect"
import type { SessionId } from "../domain/Ids.js"
import type { SessionInfo, Usage } from "../domain/Session.js"
import { clientOptions, output, outputOptions, withClient } from "./ClientOptions.js"
import { findProject } from "./ProjectCommands.js"
import { formatTable, formatTime } from "./Table.js"

/** `kiris session …`: list, rename, archive and delete a project's agent sessions, over the hub's RPC protocol. */

/** `$0.0123`, or `unknown` for a model without a price (see the price table and `modelPrices`). */
export const formatCost = (cost: Usage["cost"]): string => (cost === null ? "unknown" : `$${cost.toFixed(cost !== 0 && cost < 0.01 ? 4 : 2)}`)

const sessionTable = (sessions: ReadonlyArray<SessionInfo>) =>
  formatTable(sessions, [
    { header: "id", value: (s) => s.id },
    { header: "title", value: (s) => (s.title === "" ? "-" : s.title) },
    { header: "model", value: (s) => s.model },
    { header: "status", value: (s) => (s.archived ? `${s.status}, archived` : s.status) },
    { header: "updated", value: (s) => formatTime(s.updatedAt) },
    { header: "tokens", value: (s) => `${s.totals.inputTokens} in / ${s.totals.outputTokens} out` },
    { header: "cost", value: (s) => formatCost(s.totals.cost) }
  ])

const projectRef = Args.text({ name: "project" }).pipe(Args.withDescription("Project name or id (prj_…)"))
const sessionArg = Args.text({ name: "session" }).pipe(
  Args.withDescription("Session id (ses_…)"),
  Args.map((id) => id as SessionId)
)

const list = Command.make(
  "list",
  {
    ...clientOptions,
    ...outputOptions,
    project: projectRef,
    all: Options.boolean("all").pipe(Options.withDescription("Include archived sessions"))
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const project = yield* findProject(client, o.project)
        const sessions = yield* client.session.list({ projectId: project.id, includeArchived: o.all })
        yield* output(o.json, sessions, () => sessionTable(sessions))
      })
    )
).pipe(Command.withDescription("List a project's sessions with their token totals and cost (archived ones with --all)"))

const rename = Command.make(
  "rename",
  {
    ...clientOptions,
    ...outputOptions,
    project: projectRef,
    session: sessionArg,
    title: Args.text({ name: "title" }).pipe(Args.withDescription("The session's new title"))
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const project = yield* findProject(client, o.project)
        const session = yield* client.session.rename({ projectId: project.id, sessionId: o.session, title: o.title })
        yield* output(o.json, session, () => sessionTable([session]))
      })
    )
).pipe(Command.withDescription("Rename a session (members)"))

const archive = Command.make(
  "archive",
  {
    ...clientOptions,
    ...outputOptions,
    project: projectRef,
    session: sessionArg,
    undo: Options.boolean("undo").pipe(Options.withDescription("Unarchive the session"))
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const project = yield* findProject(client, o.project)
        const session = yield* client.session.archive({ projectId: project.id, sessionId: o.session, archived: !o.undo })
        yield* output(o.json, session, () => sessionTable([session]))
      })
    )
).pipe(Command.withDescription("Archive a session: `kiris session list` leaves it out unless --all (members; --undo unarchives)"))

const remove = Command.make("delete", { ...clientOptions, ...outputOptions, project: projectRef, session: sessionArg }, (o) =>
  withClient(o, (client) =>
    Effect.gen(function* () {
      const project = yield* findProject(client, o.project)
      yield* client.session.delete({ projectId: project.id, sessionId: o.session })
      yield* output(o.json, { projectId: project.id, sessionId: o.session, deleted: true }, () => `deleted session ${o.session}`)
    })
  )
).pipe(
  Command.withDescription(
    "Delete a session with its messages, queued prompts, pending permission requests and sub-agent sessions; a running turn is cancelled first (members)"
  )
)

export const sessionCommand = Command.make("session").pipe(
  Command.withDescription("List, rename, archive and delete agent sessions"),
  Command.withSubcommands([list, rename, archive, remove])
)
