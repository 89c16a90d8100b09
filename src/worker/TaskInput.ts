import { Effect, ParseResult, Schema } from "effect"
import type { ProjectId } from "../domain/Ids.js"
import type { DependencyResult, TaskKind } from "../domain/Task.js"
import { TaskFailure } from "./TaskFailure.js"

/** What an executor gets from a lease: the task's identity, its payload and its dependencies' results. */
export interface TaskInput {
  readonly taskId: string
  /** The task's project (its id only: a worker has no project database). */
  readonly projectId?: ProjectId
  readonly kind: TaskKind
  readonly payload: unknown
  /** Results of the tasks this one depends on, by task id. */
  readonly inputs: Readonly<Record<string, unknown>>
  /** The same dependencies in `dependsOn` order (item order for a reduce), with index, item and outcome. */
  readonly dependencies?: ReadonlyArray<DependencyResult>
  readonly createdAt: number
  /** Streams parts of the run to the hub (`task.progress` with the lease's fencing token). */
  readonly progress?: (parts: ReadonlyArray<unknown>) => Effect.Effect<void>
}

/** Decodes a payload; a malformed one can never succeed, so the failure is not retryable. */
export const decodePayload = <A, I>(schema: Schema.Schema<A, I>, input: TaskInput) =>
  Schema.decodeUnknown(schema)(input.payload).pipe(
    Effect.mapError((e) => TaskFailure.permanent(`invalid ${input.kind} payload: ${ParseResult.TreeFormatter.formatErrorSync(e)}`))
  )

/** The most readable text of a task result: chat `text`, else process `stdout`, else its JSON. */
export const resultText = (result: unknown): string => {
  if (typeof result === "string") return result
  if (typeof result === "object" && result !== null) {
    const r = result as { text?: unknown; stdout?: unknown }
    if (typeof r.text === "string") return r.text
    if (typeof r.stdout === "string") return r.stdout
  }
  return JSON.stringify(result) ?? ""
}

const renderInputs = (inputs: Readonly<Record<string, unknown>>) =>
  Object.entries(inputs)
    .map(([id, result]) => `### ${id}\n${resultText(result).trim()}`)
    .join("\n\n")

const itemText = (item: unknown) => {
  const text = typeof item === "string" ? item : (JSON.stringify(item) ?? "")
  return text.length > 200 ? `${text.slice(0, 200)}…` : text
}

/** Dependencies in order, each headed by its index and item, with its result or its error. */
const renderDependencies = (dependencies: ReadonlyArray<DependencyResult>) =>
  dependencies
    .map(
      (d) =>
        `### ${d.index}: ${itemText(d.item)}\n${d.status === "done" ? resultText(d.result).trim() : `(${d.status}${d.error === null ? "" : `: ${d.error}`})`}`
    )
    .join("\n\n")

/**
 * A prompt with its dependencies' results: substituted for `{results}` when the prompt has it,
 * otherwise appended after a heading.
 */
export const promptWithInputs = (prompt: string, inputs: Readonly<Record<string, unknown>>, dependencies: ReadonlyArray<DependencyResult> = []) => {
  if (Object.keys(inputs).length === 0 && dependencies.length === 0) return prompt.replaceAll("{results}", "")
  const rendered = dependencies.length > 0 ? renderDependencies(dependencies) : renderInputs(inputs)
  return prompt.includes("{results}")
    ? prompt.replaceAll("{results}", rendered)
    : `${prompt}\n\nResults of the tasks this one depends on:\n\n${rendered}`
}

/** The last `max` characters of a process's output, for failure messages. */
export const outputTail = (stderr: string, stdout: string, max = 2000) => {
  const text = (stderr.trim() || stdout.trim()).trim()
  return text.length <= max ? text : `…${text.slice(text.length - max)}`
}
