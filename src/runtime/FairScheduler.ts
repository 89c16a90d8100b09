import { Scheduler } from "effect"
import type { RuntimeFiber } from "effect/Fiber"

/** How long fibers may run back to back before Node gets to read sockets again. */
const BUDGET_MS = 2

let turnStartedAt = performance.now()

/**
 * Effect's default scheduler runs up to 2,048 rounds of fiber work in microtasks before it lets the
 * event loop poll for I/O; when each round is heavy (a large reply being encoded), that keeps every
 * other connection's frames unread for most of a second. This one hands back to the event loop
 * (`setImmediate`, which runs right after Node has polled its sockets) once fibers have run for
 * `BUDGET_MS` in one turn, so one busy client cannot stall the others. The first round of a drain
 * always runs as a microtask, as with the default scheduler (handing back before it made a hub that
 * failed to start never exit); only a drain that keeps going past the budget hands back. It is
 * otherwise the default scheduler: same yielding of long-running fibers, same per-fiber run queues.
 */
export class FairScheduler implements Scheduler.Scheduler {
  private readonly getRunner = Scheduler.SchedulerRunner.cached((depth, drain) => {
    if (depth >= 2048 || (depth > 0 && performance.now() - turnStartedAt > BUDGET_MS)) {
      setImmediate(() => {
        turnStartedAt = performance.now()
        drain(0)
      })
    } else {
      Promise.resolve(undefined).then(() => drain(depth + 1))
    }
  })

  shouldYield(fiber: RuntimeFiber<unknown, unknown>): number | false {
    return Scheduler.defaultScheduler.shouldYield(fiber)
  }

  scheduleTask(task: Scheduler.Task, priority: number, fiber?: RuntimeFiber<unknown, unknown>) {
    this.getRunner(fiber).scheduleTask(task, priority)
  }
}
