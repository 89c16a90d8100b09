import { Effect, Fiber } from "effect"
import type { Lease } from "../domain/Task.js"
import type { TaskFailure } from "./TaskFailure.js"

/** Why a task was stopped before it finished: it is then not reported as failed (except `shutdown`). */
export type StopReason = "cancelled" | "lease-lost" | "shutdown"

/** A task this worker has leased and is running. */
export interface RunningTask {
  readonly lease: Lease
  readonly startedAt: number
  lastBeatAt: number
  fiber: Fiber.RuntimeFiber<unknown, TaskFailure> | undefined
  reason: StopReason | undefined
}

/** Stops a running task, keeping the first reason it was stopped for. */
export const stop = (task: RunningTask, reason: StopReason) =>
  Effect.suspend(() => {
    task.reason ??= reason
    return task.fiber === undefined ? Effect.void : Fiber.interruptFork(task.fiber)
  })
