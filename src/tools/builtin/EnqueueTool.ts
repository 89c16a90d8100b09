import { Effect, Schema } from "effect"
import type { TaskId } from "../../domain/Ids.js"
import { EnqueueTask, type Task } from "../../domain/Task.js"
import type { TaskAccess } from "../../queue/TaskAccess.js"
import { defineTool, described, ToolFailure } from "../Tool.js"

const MAX_TASKS = 100
const MAX_WAIT_SECONDS = 600
const MAX_RESULT_CHARS = 4000

const Kind = Schema.Literal("agent", "chat", "cli", "shell", "python")

const describeTask = (t: Task) => {
  const head = `${t.id} ${t.kind} ${t.status}`
  if (t.status === "done") {
    const result = JSON.stringify(t.result) ?? "null"
    return `${head}\n${result.length > MAX_RESULT_CHARS ? `${result.slice(0, MAX_RESULT_CHARS)}… (result cut)` : result}`
  }
  return t.error === null || t.error === t.status ? head : `${head}: ${t.error}`
}

/** `enqueue`: puts tasks of one kind on the swarm queue for the current project, as the caller. */
export const makeEnqueueTool = (tasks: TaskAccess) =>
  defineTool({
    name: "enqueue",
    description:
      "Put tasks of one kind on the swarm queue of this project; swarm workers run them. Payloads by kind: " +
      "chat/agent `{prompt, system?, model?}`; cli `{prompt, adapter: codex|kiro|claude|custom, template?}`; " +
      "shell `{command, timeoutMs?}`; python (needs the execute capability like shell). Returns the task ids; " +
      "with `waitSeconds` it also waits (up to that long) for them to finish and returns their results.",
    parameters: Schema.Struct({
      kind: described(Kind, "The kind of every task in this call"),
      tasks: described(
        Schema.Array(
          Schema.Struct({
            payload: described(Schema.Record({ key: Schema.String, value: Schema.Unknown }), "The task's payload (see the tool description)"),
            priority: Schema.optional(described(Schema.Number, "Higher runs first (default 0)")),
            maxAttempts: Schema.optional(described(Schema.Int.pipe(Schema.between(1, 20)), "Attempts before the task is dead (default 3)")),
            dependsOn: Schema.optional(described(Schema.Array(Schema.String), "Ids of existing tasks that must finish first"))
          })
        ).pipe(Schema.minItems(1), Schema.maxItems(MAX_TASKS)),
        `1 to ${MAX_TASKS} tasks`
      ),
      waitSeconds: Schema.optional(
        described(Schema.Number.pipe(Schema.greaterThan(0), Schema.lessThanOrEqualTo(MAX_WAIT_SECONDS)), "Wait this long for the tasks to end")
      )
    }),
    permission: (args) => Effect.succeed({ subject: args.kind, kind: "name" as const, title: `enqueue ${args.tasks.length} ${args.kind} task(s)` }),
    run: (args, ctx) =>
      Effect.gen(function* () {
        const inputs = args.tasks.map((t) =>
          EnqueueTask.make({
            projectId: ctx.projectId,
            kind: args.kind,
            payload: t.payload,
            priority: t.priority ?? 0,
            maxAttempts: t.maxAttempts ?? 3,
            dependsOn: (t.dependsOn ?? []) as ReadonlyArray<TaskId>,
            concurrencyLimit: 1
          })
        )
        const enqueued = yield* tasks.enqueueAs(ctx.caller, inputs)
        const ids = enqueued.map((t) => t.id)
        const final = args.waitSeconds === undefined ? enqueued : yield* tasks.waitAs(ctx.caller, ids, Math.round(args.waitSeconds * 1000))
        return { output: final.map(describeTask).join("\n"), metadata: { taskIds: ids } }
      }).pipe(Effect.mapError((e) => new ToolFailure({ message: "reason" in e ? `${e._tag}: ${e.reason}` : e.message })))
  })
