import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import * as readline from "node:readline"
import type { HubRpcClient } from "../client/HubClient.js"
import type { InboxAnswer, InboxItem } from "../domain/Inbox.js"
import { CliError, clientOptions, describeError, output, outputOptions, withClient } from "./ClientOptions.js"
import { resolveProject } from "./SwarmShared.js"
import { formatTable, formatTime } from "./Table.js"

/** `kiris inbox`: what waits for the caller's input (permission requests, human tasks), and answering it. */

const oneLine = (text: string, max: number) => {
  const line = text.replace(/\s+/g, " ").trim()
  return line.length > max ? `${line.slice(0, max - 1)}…` : line
}

const where = (item: InboxItem) => item.sessionId ?? item.taskId ?? "-"

export const inboxTable = (items: ReadonlyArray<InboxItem>) =>
  formatTable(items, [
    { header: "id", value: (i) => i.id },
    { header: "kind", value: (i) => (i.kind === "permission" ? "permission" : "human task") },
    { header: "project", value: (i) => i.projectId },
    { header: "in", value: where },
    { header: "since", value: (i) => formatTime(i.createdAt) },
    { header: "asks", value: (i) => oneLine(i.title, 70) }
  ])

const describeItem = (item: InboxItem) =>
  [
    `${item.kind === "permission" ? "permission" : "human task"} ${item.id} in ${item.projectId}${item.requestedBy === undefined ? "" : ` (by ${item.requestedBy})`}`,
    `  ${item.title}`,
    ...(item.detail === ""
      ? []
      : item.detail
          .split("\n")
          .slice(0, 12)
          .map((l) => `  | ${l}`))
  ].join("\n")

const answerLine = (item: InboxItem, answer: InboxAnswer["answer"]) => `${item.id} ${answer === "approve" ? "approved" : "rejected"}`

/** Reads one line from the terminal; none at end of input. */
const question = (rl: readline.Interface, prompt: string) =>
  Effect.async<Option.Option<string>>((resume) => {
    let answered = false
    const onClose = () => {
      if (!answered) resume(Effect.succeed(Option.none()))
    }
    rl.once("close", onClose)
    rl.question(prompt, (line) => {
      answered = true
      rl.off("close", onClose)
      resume(Effect.succeed(Option.some(line.trim().toLowerCase())))
    })
  })

/** Asks about each item in turn on the terminal: approve, reject (with an optional note), or skip. */
const answerInteractively = (client: HubRpcClient, items: ReadonlyArray<InboxItem>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => readline.createInterface({ input: process.stdin, output: process.stdout, terminal: true })),
    (rl) =>
      Effect.gen(function* () {
        for (const item of items) {
          yield* Console.log(`\n${describeItem(item)}`)
          const extra = item.options.includes("session") ? " / [s]ession / a[l]ways" : ""
          const reply = yield* question(rl, `? [a]pprove / [r]eject${extra} / s[k]ip / [q]uit: `)
          if (Option.isNone(reply) || reply.value === "q" || reply.value === "quit") return
          const choice = reply.value
          const scope: "session" | "always" | undefined =
            choice === "s" || choice === "session" ? "session" : choice === "l" || choice === "always" ? "always" : undefined
          const approve = choice === "a" || choice === "approve" || choice === "y" || choice === "yes" || scope !== undefined
          const reject = choice === "r" || choice === "reject" || choice === "n" || choice === "no"
          if (!approve && !reject) {
            yield* Console.log("  skipped")
            continue
          }
          const note = reject ? yield* question(rl, "  note (optional): ") : Option.none<string>()
          const input = {
            id: item.id,
            answer: approve ? ("approve" as const) : ("reject" as const),
            projectId: item.projectId,
            ...(scope === undefined ? {} : { scope }),
            ...(Option.isSome(note) && note.value !== "" ? { note: note.value } : {})
          }
          yield* client.inbox.answer(input).pipe(
            Effect.matchEffect({
              onFailure: (e) => Console.error(`  could not answer ${item.id}: ${describeError(e, "")}`),
              onSuccess: () => Console.log(`  ${answerLine(item, input.answer)}`)
            })
          )
        }
      }),
    (rl) => Effect.sync(() => rl.close())
  )

const projectFlag = Options.text("project").pipe(
  Options.withDescription("Only this project (name or id; default: every project you can act in)"),
  Options.optional
)

const answer = Command.make(
  "answer",
  {
    ...clientOptions,
    ...outputOptions,
    id: Args.text({ name: "id" }).pipe(Args.withDescription("The item's id: a permission request (perm_…) or a task (tsk_…)")),
    approve: Options.boolean("approve").pipe(Options.withDescription("Allow the tool call, or approve the task")),
    reject: Options.boolean("reject").pipe(Options.withDescription("Refuse the tool call, or reject the task")),
    scope: Options.choice("scope", ["once", "session", "always"] as const).pipe(
      Options.withDescription("For a permission request: allow this call once (default), for the rest of the session, or always in the project"),
      Options.optional
    ),
    note: Options.text("note").pipe(Options.withDescription("Why (a rejected tool call's model is told; a task keeps it)"), Options.optional)
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        if (o.approve === o.reject) return yield* new CliError({ message: "say --approve or --reject (one of them)" })
        if (o.reject && Option.isSome(o.scope)) return yield* new CliError({ message: "--scope goes with --approve" })
        const choice = o.approve ? ("approve" as const) : ("reject" as const)
        const item = yield* client.inbox.answer({
          id: o.id,
          answer: choice,
          ...(Option.isSome(o.scope) ? { scope: o.scope.value } : {}),
          ...(Option.isSome(o.note) ? { note: o.note.value } : {})
        })
        yield* output(o.json, item, () => answerLine(item, choice))
      })
    )
).pipe(Command.withDescription("Answer one item of the inbox: --approve or --reject, with an optional --note"))

export const inboxCommand = Command.make(
  "inbox",
  {
    ...clientOptions,
    ...outputOptions,
    project: projectFlag,
    noInteractive: Options.boolean("no-interactive").pipe(Options.withDescription("Only list, even on a terminal"))
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const projectId = Option.isSome(o.project) ? yield* resolveProject(client, o.project, false) : undefined
        const items = yield* client.inbox.list(projectId === undefined ? {} : { projectId })
        const interactive = !o.json && !o.noInteractive && process.stdin.isTTY === true && process.stdout.isTTY === true
        if (interactive && items.length > 0) return yield* answerInteractively(client, items)
        yield* output(o.json, items, () => (items.length === 0 ? "nothing waits for your input" : inboxTable(items)))
      })
    )
).pipe(
  Command.withDescription("What waits for your input: permission requests of running sessions and human tasks (answers them on a terminal)"),
  Command.withSubcommands([answer])
)
