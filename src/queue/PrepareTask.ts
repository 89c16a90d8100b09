import { Either, ParseResult, Schema } from "effect"
import * as crypto from "node:crypto"
import { InvalidInput } from "../domain/Errors.js"
import type { TaskId } from "../domain/Ids.js"
import { ChatPayload, CliPayload, ShellPayload, type TaskKind } from "../domain/Task.js"
import type { NewTask } from "./sql/TaskRows.js"
import type { EnqueueInput } from "./TaskQueue.js"

/** Checks an enqueue request and normalizes it into the row to insert (pure; storage-agnostic). */

/** The payload check of each kind that has one, compiled once. */
const payloadDecoders: Partial<Record<TaskKind, (u: unknown) => Either.Either<unknown, ParseResult.ParseError>>> = {
  chat: Schema.decodeUnknownEither(ChatPayload as Schema.Schema<unknown, unknown>),
  cli: Schema.decodeUnknownEither(CliPayload as Schema.Schema<unknown, unknown>),
  shell: Schema.decodeUnknownEither(ShellPayload as Schema.Schema<unknown, unknown>)
}

const invalid = (reason: string) => Either.left(new InvalidInput({ reason }))
const isInt = (n: number, min: number, max: number) => Number.isInteger(n) && n >= min && n <= max

export const MAX_DEPENDENCIES = 10_000

/**
 * `tsk_` + base64url(48-bit ms timestamp + 48 random bits). Ids minted close in time share a prefix,
 * so inserts land on the same few pages of the `id` index instead of random ones; random bytes are
 * drawn from a buffer refilled 4096 ids at a time (enqueue mints tens of thousands per second).
 */
export const taskIdSource = (): (() => TaskId) => {
  let pool = Buffer.alloc(0)
  let offset = 0
  const id = Buffer.alloc(12)
  return () => {
    if (offset + 6 > pool.length) {
      pool = crypto.randomBytes(6 * 4096)
      offset = 0
    }
    // Date.now: a synchronous id source (outside Effect); the time prefix only orders ids roughly
    id.writeUIntBE(Date.now(), 0, 6)
    pool.copy(id, 6, offset, offset + 6)
    offset += 6
    return `tsk_${id.toString("base64url")}` as TaskId
  }
}

export const prepareTask = (input: EnqueueInput, now: number, newTaskId: () => TaskId): Either.Either<NewTask, InvalidInput> => {
  const decode = payloadDecoders[input.kind]
  if (decode !== undefined) {
    const decoded = decode(input.payload)
    if (Either.isLeft(decoded)) {
      return invalid(`invalid ${input.kind} payload: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`)
    }
  }
  if (!Number.isFinite(input.priority)) return invalid("priority must be a finite number")
  if (!isInt(input.maxAttempts, 1, 1000)) return invalid("maxAttempts must be an integer from 1 to 1000")
  if (!isInt(input.concurrencyLimit, 1, 1_000_000)) return invalid("concurrencyLimit must be a positive integer")
  if (input.runAfter !== undefined && !Number.isFinite(input.runAfter)) return invalid("runAfter must be epoch milliseconds")
  const dependsOn = [...new Set(input.dependsOn)]
  if (dependsOn.length > MAX_DEPENDENCIES) return invalid(`a task depends on at most ${MAX_DEPENDENCIES} tasks`)
  const policy = input.dependencyPolicy ?? null
  if (policy !== null && policy.startsWith("quorum:")) {
    const k = Number(policy.slice("quorum:".length))
    if (!isInt(k, 1, Math.max(1, dependsOn.length))) {
      return invalid(`quorum must be an integer from 1 to the number of dependencies (${dependsOn.length})`)
    }
  }
  const runAfter = input.runAfter !== undefined && input.runAfter > now ? Math.round(input.runAfter) : 0
  return Either.right({
    id: input.id ?? newTaskId(),
    projectId: input.projectId,
    kind: input.kind,
    payload: input.payload === undefined ? null : input.payload,
    priority: input.priority,
    runAfter,
    maxAttempts: input.maxAttempts,
    idempotencyKey: input.idempotencyKey ?? null,
    dependsOn,
    dependencyPolicy: policy,
    concurrencyKey: input.concurrencyKey ?? null,
    concurrencyLimit: input.concurrencyLimit
  })
}
