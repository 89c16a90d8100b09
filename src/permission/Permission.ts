import { SqlClient } from "@effect/sql"
import { Clock, Deferred, Duration, Effect, Option, Ref } from "effect"
import { newId } from "../auth/Crypto.js"
import { ServerConfig } from "../config/ServerConfig.js"
import type { Principal } from "../domain/Auth.js"
import { Conflict, InvalidInput, NotFound } from "../domain/Errors.js"
import type { MessageId, PermissionRequestId, ProjectId, SessionId } from "../domain/Ids.js"
import type { SessionStatus } from "../domain/Session.js"
import {
  PermissionExpired,
  PermissionRequest,
  PermissionRule,
  type PermissionReply,
  type ReplyPermission,
  type SetPermissionRule
} from "../domain/Permission.js"
import { EventBus } from "../events/EventBus.js"
import { permissionItem } from "../inbox/InboxItems.js"
import { SessionRepo } from "../session/SessionRepo.js"
import { type CurrentProject, ProjectDb } from "../storage/ProjectDb.js"
import { makeExpiry } from "./Expiry.js"
import { PermissionRepo, type Resolution } from "./PermissionRepo.js"
import { defaultRules, evaluate, type SubjectKind } from "./Rules.js"
import { makeSettlement, type Verdict, type Waiters } from "./Settlement.js"

export interface CheckRequest {
  readonly projectId: ProjectId
  readonly sessionId: SessionId
  readonly messageId: MessageId
  readonly caller: Principal
  readonly toolCallId: string | null
  readonly tool: string
  readonly target: { readonly subject: string; readonly kind: SubjectKind; readonly title: string }
  readonly input: unknown
}

export type { Verdict } from "./Settlement.js"

const verdictOf = (reply: PermissionReply, message: string | null): Verdict =>
  reply === "reject" ? { allowed: false, reason: message ?? "the user rejected this tool call" } : { allowed: true }

const MAX_INPUT_JSON = 64 * 1024
const MAX_INPUT_STRING = 4096

/** The arguments as stored and shown with a request: long strings (e.g. a whole file) are cut. */
const previewInput = (input: unknown): unknown => {
  if ((JSON.stringify(input) ?? "").length <= MAX_INPUT_JSON || input === null || typeof input !== "object") return input
  return Object.fromEntries(
    Object.entries(input).map(([k, v]) => [
      k,
      typeof v === "string" && v.length > MAX_INPUT_STRING ? `${v.slice(0, MAX_INPUT_STRING)}… (${v.length} characters)` : v
    ])
  )
}

const defaultRuleRows = defaultRules.map((r) => PermissionRule.make({ ...r, sessionId: null, createdBy: null, createdAt: 0 }))

/**
 * Decides whether a tool call may run: built-in defaults, stored project rules and session
 * overrides (see Rules.ts). An `ask` is persisted as a pending request, published, and waited on
 * (an in-memory Deferred per request) until `reply` answers it or `permissionTimeoutSeconds`
 * passes (0 waits forever).
 *
 * A request never outlives the call that asked: when that call is interrupted (its turn was
 * cancelled, failed or stopped), when its turn ends (`expireTurn`, called by the Orchestrator
 * for every turn) or when the hub starts again (`expireOrphans`), the request becomes `expired`
 * and `PermissionReplied` with that status is published. Answering it then fails with
 * `PermissionExpired`.
 *
 * While one of its turn's requests waits, a running session's status is `input_required`; it goes
 * back to `running` once none does (answered, expired or interrupted).
 */
export class Permission extends Effect.Service<Permission>()("kiris/Permission", {
  scoped: Effect.gen(function* () {
    const repo = yield* PermissionRepo
    const bus = yield* EventBus
    const dbs = yield* ProjectDb
    const config = yield* ServerConfig
    const waiters: Waiters = yield* Ref.make(new Map<PermissionRequestId, Deferred.Deferred<Verdict>>())
    const { expireAll, settle, wake } = makeSettlement({ repo, bus, waiters })
    const { expireOrphans, expireSession, expireTurn } = makeExpiry({ repo, dbs, expireAll })
    const sessions = yield* SessionRepo
    /** Requests waiting per session, to tell when a session needs input and when it no longer does. */
    const asking = new Map<SessionId, number>()
    const setSessionStatus = (projectId: ProjectId, sessionId: SessionId, from: SessionStatus, to: SessionStatus) =>
      Effect.gen(function* () {
        const session = yield* sessions.getSession(projectId, sessionId)
        if (Option.isNone(session) || session.value.status !== from) return
        yield* sessions.updateSession(sessionId, { status: to })
        yield* bus.publish(projectId, { _tag: "SessionStatus", sessionId, status: to })
      })
    const startAsking = (projectId: ProjectId, sessionId: SessionId) =>
      Effect.suspend(() => {
        const n = (asking.get(sessionId) ?? 0) + 1
        asking.set(sessionId, n)
        return n === 1 ? setSessionStatus(projectId, sessionId, "running", "input_required") : Effect.void
      })
    const stopAsking = (projectId: ProjectId, sessionId: SessionId) =>
      Effect.suspend(() => {
        const n = (asking.get(sessionId) ?? 1) - 1
        if (n > 0) {
          asking.set(sessionId, n)
          return Effect.void
        }
        asking.delete(sessionId)
        return setSessionStatus(projectId, sessionId, "input_required", "running")
      })
    const awaitAnswer = (waiter: Deferred.Deferred<Verdict>) =>
      config.permissionTimeoutSeconds > 0
        ? Effect.timeoutOption(Deferred.await(waiter), Duration.millis(config.permissionTimeoutSeconds * 1000))
        : Effect.asSome(Deferred.await(waiter))

    const ask = (req: CheckRequest) =>
      Effect.gen(function* () {
        const request = PermissionRequest.make({
          id: newId("perm") as PermissionRequestId,
          projectId: req.projectId,
          sessionId: req.sessionId,
          messageId: req.messageId,
          toolCallId: req.toolCallId,
          tool: req.tool,
          subject: req.target.subject,
          title: req.target.title,
          input: previewInput(req.input),
          requestedBy: req.caller.name,
          status: "pending",
          reply: null,
          message: null,
          repliedBy: null,
          createdAt: yield* Clock.currentTimeMillis,
          repliedAt: null
        })
        const waiter = yield* Deferred.make<Verdict>()
        yield* Ref.update(waiters, (m) => new Map(m).set(request.id, waiter))
        const unregister = Ref.update(waiters, (m) => {
          const next = new Map(m)
          next.delete(request.id)
          return next
        })
        // Stored and published as one step, so an interruption either prevents the request or
        // finds it stored and expires it: a pending request always has a live waiter.
        return yield* Effect.uninterruptibleMask((restore) =>
          Effect.gen(function* () {
            yield* repo.insertRequest(request)
            yield* bus.publish(req.projectId, { _tag: "PermissionAsked", request })
            yield* bus.publish(req.projectId, { _tag: "InboxItemAdded", item: permissionItem(request) })
            yield* startAsking(req.projectId, req.sessionId)
            const answered = yield* restore(awaitAnswer(waiter)).pipe(
              Effect.onInterrupt(() => expireAll(req.projectId, [request], "the turn ended before the request was answered")),
              Effect.ensuring(stopAsking(req.projectId, req.sessionId))
            )
            if (Option.isSome(answered)) return answered.value
            const reason = `no answer to the permission request within ${config.permissionTimeoutSeconds}s`
            const expired = yield* settle(
              req.projectId,
              request.id,
              { status: "expired", reply: "reject", message: reason, repliedBy: null },
              { allowed: false, reason }
            )
            return Option.isSome(expired) ? ({ allowed: false, reason } as const) : yield* restore(Deferred.await(waiter))
          })
        ).pipe(Effect.ensuring(unregister))
      })

    /** Allow, deny, or ask and wait. Runs inside the project's database scope. */
    const check = Effect.fn("Permission.check")(function* (req: CheckRequest) {
      const rules = [...defaultRuleRows, ...(yield* repo.listRules(req.sessionId))]
      const decision = evaluate(rules, { tool: req.tool, subject: req.target.subject, kind: req.target.kind })
      if (decision.action === "allow") return { allowed: true } as Verdict
      if (decision.action === "deny") {
        const rule = decision.rule
        return {
          allowed: false,
          reason: `permission denied: ${req.tool} on ${req.target.subject}` + (rule ? ` (${rule.source} rule ${rule.tool} ${rule.pattern})` : "")
        } as Verdict
      }
      return yield* ask(req)
    }) as (req: CheckRequest) => Effect.Effect<Verdict, never, SqlClient.SqlClient | CurrentProject>

    const pending = Effect.fn("Permission.pending")(function* (caller: Principal, projectId: ProjectId, sessionId?: SessionId) {
      return yield* dbs.withProject(projectId)(repo.listPending(sessionId))
    })

    /** Why a request that is no longer pending cannot be answered. */
    const notPending = (r: PermissionRequest) =>
      r.status === "expired"
        ? new PermissionExpired({ requestId: r.id, reason: r.message ?? "the request expired" })
        : new Conflict({ reason: `permission request ${r.id} is already ${r.status}` })

    const reply = Effect.fn("Permission.reply")(function* (caller: Principal, input: ReplyPermission) {
      return yield* dbs.withProject(input.projectId)(
        Effect.uninterruptible(
          Effect.gen(function* () {
            const found = yield* repo.getRequest(input.requestId)
            if (Option.isNone(found)) return yield* new NotFound({ entity: "permission request", id: input.requestId })
            const request = found.value
            if (request.status !== "pending") return yield* notPending(request)
            const message = input.reply === "reject" ? (input.message ?? null) : null
            const resolution: Resolution = {
              status: input.reply === "reject" ? "rejected" : "allowed",
              reply: input.reply,
              message,
              repliedBy: caller.name
            }
            const sql = yield* SqlClient.SqlClient
            const settled = yield* sql
              .withTransaction(
                Effect.gen(function* () {
                  const resolved = yield* repo.resolve(request.id, resolution)
                  if (Option.isSome(resolved) && (input.reply === "session" || input.reply === "always")) {
                    yield* repo.upsertRule({
                      id: newId("rule"),
                      sessionId: input.reply === "session" ? request.sessionId : null,
                      tool: request.tool,
                      pattern: input.pattern ?? request.subject,
                      action: "allow",
                      createdBy: caller.name
                    })
                  }
                  return resolved
                })
              )
              .pipe(Effect.orDie)
            if (Option.isNone(settled)) {
              const now = yield* repo.getRequest(request.id)
              return yield* notPending(Option.getOrElse(now, () => request))
            }
            yield* wake(input.projectId, settled.value, verdictOf(input.reply, message))
            return settled.value
          })
        )
      )
    })

    /** The built-in defaults, the project's rules and, with `sessionId`, that session's overrides. */
    const rules = Effect.fn("Permission.rules")(function* (caller: Principal, projectId: ProjectId, sessionId?: SessionId) {
      const stored = yield* dbs.withProject(projectId)(repo.listRules(sessionId))
      return [...defaultRuleRows, ...stored]
    })

    const setRule = Effect.fn("Permission.setRule")(function* (caller: Principal, input: SetPermissionRule) {
      return yield* dbs.withProject(input.projectId)(
        repo.upsertRule({
          id: newId("rule"),
          sessionId: null,
          tool: input.tool,
          pattern: input.pattern,
          action: input.action,
          createdBy: caller.name
        })
      )
    })

    const removeRule = Effect.fn("Permission.removeRule")(function* (caller: Principal, projectId: ProjectId, ruleId: string) {
      if (ruleId.startsWith("default:")) {
        return yield* new InvalidInput({ reason: "built-in rules cannot be removed; add a project rule to override one" })
      }
      const removed = yield* dbs.withProject(projectId)(repo.removeRule(ruleId))
      if (!removed) return yield* new NotFound({ entity: "permission rule", id: ruleId })
    })

    return { check, pending, reply, rules, setRule, removeRule, expireSession, expireTurn, expireOrphans } as const
  }),
  dependencies: [PermissionRepo.Default, SessionRepo.Default]
}) {}
