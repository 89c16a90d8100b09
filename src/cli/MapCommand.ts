import { Command, Options } from "@effect/cli"
import { Clock, Console, Effect, Option } from "effect"
import * as fs from "node:fs"
import type { MapPolicy } from "../domain/rpc/TaskRpcs.js"
import type { Task, TaskKind } from "../domain/Task.js"
import { shellQuote } from "../runtime/ProcessRunner.js"
import { CliError, clientOptions, outputOptions, withClient } from "./ClientOptions.js"
import { buildPayload, failureLine, isEnded, payloadOptions, projectOption, resolveProject, resultOutput, waitForTasks } from "./SwarmShared.js"
import { formatJson } from "./Table.js"
import { enqueueKinds, waitAndPrint } from "./TaskCommands.js"

/**
 * `kiris map`: one task per line of a JSONL file from a template, optionally a reduce task that
 * receives their results, with a progress bar while waiting.
 */

const readItems = (file: string) =>
  Effect.gen(function* () {
    const text = yield* Effect.try({
      try: () => fs.readFileSync(file, "utf8"),
      catch: (e) => new CliError({ message: `cannot read ${file}: ${(e as Error).message}` })
    })
    const items: Array<unknown> = []
    const lines = text.split("\n")
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim()
      if (line === "") continue
      try {
        items.push(JSON.parse(line))
      } catch (e) {
        return yield* new CliError({ message: `${file}:${i + 1}: not JSON (${(e as Error).message})` })
      }
    }
    if (items.length === 0) return yield* new CliError({ message: `${file} has no items` })
    return items
  })

/** `{item}` (shell-quoted for shell, a string literal for python) and `{index}` filled in. */
export const renderTemplate = (template: string, kind: TaskKind, item: unknown, index: number) => {
  const text = typeof item === "string" ? item : JSON.stringify(item)
  const rendered = kind === "shell" ? shellQuote(text) : kind === "python" ? JSON.stringify(text) : text
  return template.replaceAll("{item}", rendered).replaceAll("{index}", String(index))
}

const parsePolicy = (text: string): Effect.Effect<MapPolicy, CliError> =>
  text === "fail-fast" || text === "partial"
    ? Effect.succeed(text)
    : /^quorum:\d+$/.test(text)
      ? Effect.succeed(text as `quorum:${number}`)
      : Effect.fail(new CliError({ message: `--policy ${text}: use fail-fast, partial or quorum:K` }))

const bar = (done: number, failed: number, total: number) => {
  const width = 30
  const filled = Math.round(((done + failed) / total) * width)
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${done + failed}/${total} done ${done} failed ${failed}`
}

/** A progress reporter: a redrawn bar on a terminal, otherwise a plain line at most every 5 s. */
const progress = (total: number) => {
  const tty = process.stderr.isTTY === true
  let last = ""
  let lastAt = 0
  const update = (tasks: ReadonlyArray<Task>) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const ended = tasks.filter(isEnded)
      const line = bar(ended.filter((t) => t.status === "done").length, ended.length - ended.filter((t) => t.status === "done").length, total)
      if (tty) process.stderr.write(`\r${line}`)
      else if (line !== last && (now - lastAt >= 5000 || ended.length === total)) {
        process.stderr.write(`${line}\n`)
        lastAt = now
      }
      last = line
    })
  const end = Effect.sync(() => {
    if (tty && last !== "") process.stderr.write("\n")
  })
  return { update, end }
}

const quorumOf = (policy: MapPolicy, total: number) =>
  policy === "fail-fast" ? total : policy === "partial" ? 1 : Number(policy.slice("quorum:".length))

export const mapCommand = Command.make(
  "map",
  {
    ...clientOptions,
    ...outputOptions,
    ...payloadOptions,
    input: Options.text("input").pipe(Options.withDescription("JSONL file: one item (any JSON value) per line")),
    template: Options.text("template").pipe(Options.withDescription("Prompt or command of each map task; {item} and {index} are filled in")),
    reduce: Options.text("reduce").pipe(
      Options.withDescription(
        "Prompt or command of a reduce task that runs on the map results ({results} in a prompt; KIRIS_INPUTS_FILE for commands)"
      ),
      Options.optional
    ),
    reduceKind: Options.choice("reduce-kind", enqueueKinds).pipe(
      Options.withDescription("Kind of the reduce task (default: --kind)"),
      Options.optional
    ),
    policy: Options.text("policy").pipe(
      Options.withPseudoName("fail-fast|partial|quorum:K"),
      Options.withDescription(
        "When the reduce runs: fail-fast (every map task must succeed; the first failure cancels the others and fails the reduce), partial (once all have ended, on whatever succeeded), " +
          "quorum:K (once all have ended, if at least K succeeded; it fails once K is out of reach). Without --reduce: how many must succeed for exit 0 (all, at least one, K)"
      ),
      Options.withDefault("fail-fast")
    ),
    kind: Options.choice("kind", enqueueKinds).pipe(Options.withDescription("Kind of the map tasks"), Options.withDefault("chat" as const)),
    priority: Options.integer("priority").pipe(
      Options.withDescription("Priority of every task of the fan-out; higher runs first (default 0)"),
      Options.optional
    ),
    maxAttempts: Options.integer("max-attempts").pipe(
      Options.withDescription("Attempts of each task before it is dead (default 3)"),
      Options.optional
    ),
    project: projectOption,
    wait: Options.boolean("wait").pipe(Options.withDescription("Show progress, then print the reduce result (or every map result)"))
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const items = yield* readItems(o.input)
        const policy = yield* parsePolicy(o.policy)
        const projectId = yield* resolveProject(client, o.project)
        const payloads = yield* Effect.forEach(items, (item, i) => buildPayload(o.kind, renderTemplate(o.template, o.kind, item, i), o))
        const reduceKind = Option.getOrElse(o.reduceKind, () => o.kind)
        const reduce = Option.isSome(o.reduce) ? yield* buildPayload(reduceKind, o.reduce.value, o) : undefined
        const mapped = yield* client.task.map({
          projectId,
          kind: o.kind,
          items: payloads,
          policy,
          ...(reduce === undefined ? {} : { reduce, reduceKind }),
          ...(Option.isSome(o.priority) ? { priority: o.priority.value } : {}),
          ...(Option.isSome(o.maxAttempts) ? { maxAttempts: o.maxAttempts.value } : {})
        })
        const mapIds = mapped.mapTasks.map((t) => t.id)
        if (!o.wait) {
          if (o.json) return yield* Console.log(formatJson(mapped))
          yield* Console.log(`${mapIds.length} map tasks${mapped.reduceTask === null ? "" : `, reduce ${mapped.reduceTask.id}`}`)
          return yield* Console.log(mapIds.join("\n"))
        }
        const bar = progress(mapIds.length)
        const mapTasks = yield* waitForTasks(client, mapIds, bar.update).pipe(Effect.ensuring(bar.end))
        if (mapped.reduceTask !== null) return yield* waitAndPrint(client, mapped.reduceTask, o.json)
        if (o.json) yield* Console.log(formatJson(mapTasks))
        else
          for (const t of mapTasks) {
            if (t.status === "done") yield* Effect.sync(() => process.stdout.write(resultOutput(t)))
            else yield* Console.error(`error: ${failureLine(t)}`)
          }
        const done = mapTasks.filter((t) => t.status === "done").length
        if (done < quorumOf(policy, mapTasks.length)) {
          return yield* new CliError({ message: `${mapTasks.length - done} of ${mapTasks.length} map tasks did not succeed` })
        }
      })
    )
).pipe(Command.withDescription("Fan a template out over the items of a JSONL file, optionally reducing the results"))
