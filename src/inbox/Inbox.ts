import { Effect, Either, Option } from "effect"
import { AccessControl } from "../auth/AccessControl.js"
import type { Principal } from "../domain/Auth.js"
import { Forbidden, InvalidInput, NotFound } from "../domain/Errors.js"
import type { PermissionRequestId, ProjectId, TaskId } from "../domain/Ids.js"
import type { InboxAnswer, InboxItem } from "../domain/Inbox.js"
import type { PermissionRequest } from "../domain/Permission.js"
import { Permission } from "../permission/Permission.js"
import { PermissionRepo } from "../permission/PermissionRepo.js"
import { ProjectsRepo } from "../project/ProjectsRepo.js"
import { TaskQueue } from "../queue/TaskQueue.js"
import { ProjectDb } from "../storage/ProjectDb.js"
import { humanTaskItem, permissionItem } from "./InboxItems.js"

/** Most human tasks listed per project (oldest first). */
const MAX_TASKS_PER_PROJECT = 200

const isTaskId = (id: string) => id.startsWith("tsk_")
const isPermissionId = (id: string) => id.startsWith("perm_")

/**
 * What waits for a user's input, across the projects they can act in: permission requests of
 * running turns and `human` tasks. An item is listed only to those who may answer it, checked with
 * the requirement of the operation that answers it (`permission.reply`, `task.approve`) through
 * AccessControl; answering goes through those same checks and operations.
 */
export class Inbox extends Effect.Service<Inbox>()("kiris/Inbox", {
  effect: Effect.gen(function* () {
    const permission = yield* Permission
    const requests = yield* PermissionRepo
    const queue = yield* TaskQueue
    const control = yield* AccessControl
    const projects = yield* ProjectsRepo
    const dbs = yield* ProjectDb

    /** The projects the caller can see: the one asked for, else all of theirs. */
    const projectsOf = (caller: Principal, projectId: ProjectId | undefined) =>
      projectId !== undefined
        ? Effect.succeed<ReadonlyArray<ProjectId>>([projectId])
        : Effect.map(caller.isAdmin ? projects.listAll : projects.listFor(caller.userId), (ps) =>
            ps.map((p) => p.id).filter((id) => caller.projects === undefined || caller.projects.includes(id))
          )

    /** The check of the operation `tag`, as its callers get it (the caller's credentials were checked already). */
    const check = (caller: Principal, tag: string, input: unknown) =>
      control.checkRpc(caller, tag, input).pipe(Effect.catchTag("Unauthorized", (e) => Effect.fail(new Forbidden({ reason: e.reason }))))
    const may = (caller: Principal, tag: string, input: unknown) => Effect.map(Effect.either(check(caller, tag, input)), Either.isRight)

    const itemsOf = (caller: Principal, projectId: ProjectId) =>
      Effect.gen(function* () {
        const asked = (yield* may(caller, "permission.reply", { projectId }))
          ? (yield* permission.pending(caller, projectId)).map(permissionItem)
          : []
        const tasks = yield* queue.list({ projectIds: [projectId], status: "input_required", kind: "human", limit: MAX_TASKS_PER_PROJECT })
        const first = tasks[0]
        const waiting = first !== undefined && (yield* may(caller, "task.approve", { taskId: first.id })) ? tasks.map(humanTaskItem) : []
        return [...asked, ...waiting]
      })

    const list = Effect.fn("Inbox.list")(function* (caller: Principal, projectId?: ProjectId) {
      const ids = yield* projectsOf(caller, projectId)
      const items = yield* Effect.forEach(ids, (id) => itemsOf(caller, id), { concurrency: 4 })
      return items.flat().sort((a, b) => a.createdAt - b.createdAt) as ReadonlyArray<InboxItem>
    })

    /** The project of a permission request: the one named, else the first of the caller's projects that holds it. */
    const findRequest = (caller: Principal, id: PermissionRequestId, projectId: ProjectId | undefined) =>
      Effect.gen(function* () {
        for (const p of yield* projectsOf(caller, projectId)) {
          const found = yield* dbs.withProject(p)(requests.getRequest(id))
          if (Option.isSome(found)) return { projectId: p, request: found.value as PermissionRequest }
        }
        return yield* new NotFound({ entity: "inbox item", id })
      })

    const answerPermission = (caller: Principal, input: InboxAnswer) =>
      Effect.gen(function* () {
        const requestId = input.id as PermissionRequestId
        const { projectId } = yield* findRequest(caller, requestId, input.projectId)
        const reply = {
          projectId,
          requestId,
          reply: input.answer === "reject" ? ("reject" as const) : (input.scope ?? "once"),
          ...(input.answer === "reject" && input.note !== undefined ? { message: input.note } : {})
        }
        yield* check(caller, "permission.reply", reply)
        const replied = yield* permission.reply(caller, reply)
        return permissionItem(replied)
      })

    const answerTask = (caller: Principal, input: InboxAnswer) =>
      Effect.gen(function* () {
        const taskId = input.id as TaskId
        if (input.scope !== undefined && input.scope !== "once") {
          return yield* new InvalidInput({ reason: `a task is approved once; scope ${input.scope} applies to permission requests only` })
        }
        yield* check(caller, "task.approve", { taskId })
        const task = yield* queue.get(taskId)
        if (task.kind !== "human") return yield* new InvalidInput({ reason: `${taskId} is a ${task.kind} task, not a human task waiting for input` })
        if (task.status !== "input_required")
          return yield* new InvalidInput({ reason: `task ${taskId} is not waiting for input (it is ${task.status})` })
        const note = input.note === undefined ? {} : { note: input.note }
        const ended =
          input.answer === "approve"
            ? yield* queue.approve(taskId, { approved: true, by: caller.name, ...note })
            : yield* queue.reject(taskId, `rejected by ${caller.name}${input.note === undefined ? "" : `: ${input.note}`}`)
        return humanTaskItem(ended)
      })

    /** Answers one item: the permission reply or the task approval, with that operation's checks. Returns the item as it was. */
    const answer = Effect.fn("Inbox.answer")(function* (caller: Principal, input: InboxAnswer) {
      if (isTaskId(input.id)) return yield* answerTask(caller, input)
      if (isPermissionId(input.id)) return yield* answerPermission(caller, input)
      return yield* new InvalidInput({ reason: `${input.id} is neither a permission request (perm_…) nor a task (tsk_…)` })
    })

    return { list, answer } as const
  }),
  dependencies: [Permission.Default, PermissionRepo.Default, AccessControl.Default, ProjectsRepo.Default]
}) {}
