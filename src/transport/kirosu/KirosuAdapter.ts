import { Clock, Effect, Option, Schema, SynchronizedRef } from "effect"
import { UsersRepo } from "../../auth/UsersRepo.js"
import { ServerConfig } from "../../config/ServerConfig.js"
import { Principal } from "../../domain/Auth.js"
import type { ProjectId, WorkerId } from "../../domain/Ids.js"
import { AckParams, ApproveParams, EnqueueParams, KirosuError, type KirosuTask, LeaseParams, ListParams } from "../../domain/Kirosu.js"
import { CreateProject } from "../../domain/Project.js"
import { EnqueueTask, type Task, type TaskKind, type TaskStatus } from "../../domain/Task.js"
import { Projects } from "../../project/Projects.js"
import { ProjectsRepo } from "../../project/ProjectsRepo.js"
import { TaskQueue } from "../../queue/TaskQueue.js"
import { describeParamError, kirisStatuses, toKirosuStats, toKirosuTask } from "./KirosuProtocol.js"

/**
 * Kirosu's hub methods over the hub's TaskQueue. Kirosu tasks are ordinary Kiris tasks in one
 * project (`kirosuProject`, created on first use and owned by the admin user); the Kirosu task id is
 * the task's integer `seq`. Sockets, framing and the shared key belong to KirosuServer.
 */

/** Kinds a Kirosu agent runs. `human` tasks are never leased; they wait for `approve`. */
const agentKinds: ReadonlyArray<TaskKind> = ["chat", "python"]
const enqueueKinds: ReadonlyArray<TaskKind> = ["chat", "python", "human"]
const maxLease = 1000
const pageSize = 1000

const fail = (message: string) => new KirosuError({ message })

export const pythonNeedsKey = "python tasks are refused: this hub's Kirosu port has no key (start the hub with --kirosu-key or KIRO_SWARM_KEY)"

const decode =
  <A, I>(schema: Schema.Schema<A, I>) =>
  (params: unknown) =>
    Schema.decodeUnknown(schema, { exact: true })(params).pipe(Effect.mapError((e) => fail(describeParamError(e))))

/** Kirosu clients get messages, not tags. */
const toKirosuError = (e: { readonly _tag: string; readonly message: string; readonly reason?: string }) =>
  fail(e._tag === "NotFound" ? e.message : (e.reason ?? e.message))

export class KirosuAdapter extends Effect.Service<KirosuAdapter>()("kiris/KirosuAdapter", {
  effect: Effect.gen(function* () {
    const queue = yield* TaskQueue
    const projects = yield* Projects
    const projectsRepo = yield* ProjectsRepo
    const users = yield* UsersRepo
    const config = yield* ServerConfig

    const findOrCreateProject = Effect.gen(function* () {
      const all = yield* projectsRepo.listAll
      const existing = all.find((p) => p.id === config.kirosuProject) ?? all.find((p) => p.name === config.kirosuProject)
      if (existing !== undefined) return existing.id
      const admin = (yield* users.list).find((u) => u.isAdmin)
      if (admin === undefined) return yield* fail("the hub has no admin user yet")
      const owner = Principal.make({ kind: "user", userId: admin.id, name: admin.name, isAdmin: true, scopes: ["admin"] })
      const created = yield* projects
        .create(owner, CreateProject.make({ name: config.kirosuProject, description: "Tasks of Kirosu agents and clients" }))
        .pipe(Effect.mapError(toKirosuError))
      yield* Effect.logInfo(`kirosu: created project ${created.name} (${created.id})`)
      return created.id
    })
    const projectRef = yield* SynchronizedRef.make(Option.none<ProjectId>())
    /** The Kirosu project, found or created once (concurrent first requests wait for one another). */
    const project = SynchronizedRef.modifyEffect(projectRef, (current) =>
      Option.isSome(current)
        ? Effect.succeed([current.value, current] as const)
        : Effect.map(findOrCreateProject, (id) => [id, Option.some(id)] as const)
    )

    /** A task of the Kirosu project by its integer id. */
    const bySeq = (seq: number) =>
      Effect.gen(function* () {
        const projectId = yield* project
        const task = yield* queue.getBySeq(seq).pipe(Effect.catchTag("NotFound", () => Effect.fail(fail(`Task not found: ${seq}`))))
        if (task.projectId !== projectId) return yield* fail(`Task not found: ${seq}`)
        return task
      })

    /** Newest first, across several statuses; `limit <= 0` means every task. */
    const listTasks = (projectId: ProjectId, statuses: ReadonlyArray<TaskStatus> | undefined, limit: number) =>
      Effect.gen(function* () {
        const want = limit <= 0 ? Infinity : limit
        const one = (status: TaskStatus | undefined) =>
          Effect.gen(function* () {
            const out: Array<Task> = []
            let beforeSeq: number | undefined = undefined
            while (out.length < want) {
              const page: ReadonlyArray<Task> = yield* queue.list({
                projectIds: [projectId],
                status,
                limit: Math.min(pageSize, want - out.length),
                beforeSeq
              })
              out.push(...page)
              const last = page.at(-1)
              if (page.length === 0 || last === undefined) break
              beforeSeq = last.seq
            }
            return out
          })
        const lists = yield* Effect.forEach(statuses ?? [undefined], one)
        return lists
          .flat()
          .sort((a, b) => b.seq - a.seq)
          .slice(0, want)
      })

    const stats = Effect.fn("KirosuAdapter.stats")(function* () {
      const projectId = yield* project
      const now = yield* Clock.currentTimeMillis
      const [counts, done] = yield* Effect.all([queue.stats([projectId]), queue.doneSummary([projectId], now - 3_600_000)])
      return toKirosuStats({
        counts: {
          queued: counts.waiting + counts.queued + counts.input_required,
          leased: counts.leased,
          done: counts.done,
          failed: counts.failed + counts.dead + counts.cancelled
        },
        doneDurationMsSum: done.durationMsSum,
        doneWithDuration: done.count,
        completedLastHour: done.finishedSince
      })
    })

    const enqueue = Effect.fn("KirosuAdapter.enqueue")(function* (params: unknown) {
      const p = yield* decode(EnqueueParams)(params)
      const type = (p.type || "chat").trim().toLowerCase()
      if (!enqueueKinds.includes(type as TaskKind)) {
        return yield* fail(`Unsupported task type: ${p.type} (expected one of ${enqueueKinds.join(", ")})`)
      }
      const kind = type as TaskKind
      // Without a key any local process may call the port; python tasks are code that
      // `--trust-shell` workers run, so they need the key.
      if (kind === "python" && Option.isNone(config.kirosuKey)) return yield* fail(pythonNeedsKey)
      const system = p.system_prompt ? { system: p.system_prompt } : {}
      const payload = kind === "python" ? { command: p.prompt } : { prompt: p.prompt, ...system }
      const projectId = yield* project
      const task = yield* queue.enqueue(EnqueueTask.make({ projectId, kind, payload })).pipe(Effect.mapError(toKirosuError))
      return { task_id: task.seq }
    })

    const lease = Effect.fn("KirosuAdapter.lease")(function* (params: unknown) {
      const p = yield* decode(LeaseParams)(params)
      const workerId = (p.worker_id || "worker") as WorkerId
      const max = Math.min(maxLease, p.max_tasks && p.max_tasks > 0 ? p.max_tasks : 1)
      const seconds = p.lease_seconds && p.lease_seconds > 0 ? p.lease_seconds : config.leaseSeconds
      const projectId = yield* project
      const leases = yield* queue.lease(workerId, agentKinds, max, seconds, [projectId]).pipe(Effect.mapError(toKirosuError))
      const tasks: Array<KirosuTask> = leases.map((l) => toKirosuTask(l.task)).sort((a, b) => a.task_id - b.task_id)
      return { tasks }
    })

    const ack = Effect.fn("KirosuAdapter.ack")(function* (params: unknown) {
      const p = yield* decode(AckParams)(params)
      const status = p.status.trim().toLowerCase()
      if (status !== "done" && status !== "failed") return yield* fail(`Invalid status: ${p.status} (expected done or failed)`)
      const task = yield* bySeq(p.task_id)
      if (task.status !== "leased" || task.workerId === null) return yield* fail(`Task ${p.task_id} is not leased (status ${task.status})`)
      // Kirosu acks by task id alone: the ack acts as the task's current holder.
      const done =
        status === "done"
          ? queue.complete(task.workerId, task.id, task.fencingToken, p.result ?? null)
          : queue.fail(task.workerId, task.id, task.fencingToken, p.error === undefined || p.error === null ? "failed" : String(p.error), false)
      yield* done.pipe(Effect.mapError(toKirosuError))
      return { ok: true }
    })

    const list = Effect.fn("KirosuAdapter.list")(function* (params: unknown) {
      const p = yield* decode(ListParams)(params)
      const projectId = yield* project
      const statuses = p.status ? kirisStatuses(p.status) : undefined
      const tasks = statuses !== undefined && statuses.length === 0 ? [] : yield* listTasks(projectId, statuses, p.limit ?? 50)
      return { tasks: tasks.map(toKirosuTask), stats: yield* stats() }
    })

    const retryFailed = Effect.fn("KirosuAdapter.retryFailed")(function* () {
      const projectId = yield* project
      const failed = yield* listTasks(projectId, ["failed", "dead"], 0)
      const retried = yield* Effect.forEach(failed, (t) => Effect.option(queue.retry(t.id)), { concurrency: 64 })
      return { retried: retried.filter(Option.isSome).length }
    })

    const approve = Effect.fn("KirosuAdapter.approve")(function* (params: unknown) {
      const p = yield* decode(ApproveParams)(params)
      const task = yield* bySeq(p.task_id)
      if (task.kind !== "human") return yield* fail(`Task ${p.task_id} is not a human task (type ${task.kind})`)
      yield* queue.approve(task.id, "Approved by human").pipe(Effect.mapError(toKirosuError))
      return { ok: true }
    })

    const table: Readonly<Record<string, (params: unknown) => Effect.Effect<object, KirosuError>>> = {
      enqueue,
      lease,
      ack,
      list,
      stats: () => Effect.map(stats(), (s) => ({ stats: s })),
      retry_failed: () => retryFailed(),
      approve
    }

    /** Runs one Kirosu method (everything but `shutdown`, which belongs to the connection). */
    const call = (method: string, params: Readonly<Record<string, unknown>>): Effect.Effect<object, KirosuError> => {
      const run = Object.hasOwn(table, method) ? table[method] : undefined
      return run === undefined ? Effect.fail(fail(`Unknown method: ${method}`)) : run(params)
    }

    return { methods: Object.keys(table), call, project } as const
  }),
  dependencies: [ProjectsRepo.Default, UsersRepo.Default]
}) {}
