import { Effect, Option } from "effect"
import { type Requirement, requirementOf } from "../../src/domain/Access.js"
import type { ProjectId, SessionId, TaskId } from "../../src/domain/Ids.js"
import { makeHubClient } from "../../src/client/HubClient.js"
import { request as rest } from "../support/Http.js"
import { startHubWithIdleModel, type TestHub } from "../support/Hub.js"

/**
 * The access levels the auth matrix expects, stated here independently of the declarations in
 * src/domain so that a wrong declaration fails the matrix, not only a missing one.
 */
export type Level =
  "self" | "user-read" | "user-write" | "admin-read" | "admin-write" | "viewer" | "member" | "project-admin" | "project-owner" | "worker"

/** The level a declared requirement amounts to. */
export const levelOf = (r: Requirement): Level | "public" => {
  switch (r._tag) {
    case "Public":
      return "public"
    case "Self":
      return "self"
    case "Authenticated":
      return r.scope === "read" ? "user-read" : "user-write"
    case "ServerAdmin":
      return r.scope === "read" ? "admin-read" : "admin-write"
    case "Worker":
      return "worker"
    case "Project":
    case "Tasks":
      return r.role === "viewer" && r.scope === "read"
        ? "viewer"
        : r.role === "member" && r.scope === "write"
          ? "member"
          : r.role === "admin" && r.scope === "write"
            ? "project-admin"
            : r.role === "owner" && r.scope === "write"
              ? "project-owner"
              : (`unexpected ${r.role}/${r.scope}` as Level)
  }
}

export const declaredLevel = (annotations: unknown) => Option.map(requirementOf(annotations as Parameters<typeof requirementOf>[0]), levelOf)

/** The callers of the matrix: each cell is one of them calling one operation. */
export type Caller =
  | "no token"
  | "garbage token"
  | "revoked key"
  | "non-member"
  | "viewer doing a change"
  | "read-only key doing a change"
  | "worker key doing a non-worker call"
  | "user key doing a worker call"
  | "member without execute enqueuing commands"

export const CALLERS: ReadonlyArray<Caller> = [
  "no token",
  "garbage token",
  "revoked key",
  "non-member",
  "viewer doing a change",
  "read-only key doing a change",
  "worker key doing a non-worker call",
  "user key doing a worker call",
  "member without execute enqueuing commands"
]

const changes: ReadonlySet<Level> = new Set(["user-write", "admin-write", "member", "project-admin", "project-owner"])
const inProject: ReadonlySet<Level> = new Set(["viewer", "member", "project-admin", "project-owner"])

/**
 * The refusal a cell must get (`_tag`, and for NotFound the entity: the project is invisible), or
 * `undefined` when the caller may make the call (the cell does not apply).
 */
export const expected = (caller: Caller, level: Level, runsCommands: boolean): string | undefined => {
  switch (caller) {
    case "no token":
    case "garbage token":
    case "revoked key":
      return "Unauthorized"
    case "non-member":
      return inProject.has(level) ? "NotFound" : level === "admin-read" || level === "admin-write" || level === "worker" ? "Forbidden" : undefined
    case "viewer doing a change":
      return level === "member" || level === "project-admin" || level === "project-owner" || level === "admin-write" || level === "worker"
        ? "Forbidden"
        : undefined
    case "read-only key doing a change":
      return changes.has(level) || level === "worker" || level === "admin-read" ? "Forbidden" : undefined
    case "worker key doing a non-worker call":
      return level === "worker" || level === "self" ? undefined : "Forbidden"
    case "user key doing a worker call":
      return level === "worker" ? "Forbidden" : undefined
    case "member without execute enqueuing commands":
      return runsCommands ? "Forbidden" : undefined
  }
}

/** A hub whose default model is an OpenAI-compatible endpoint no test calls (sessions can be created). */
export const startMatrixHub = startHubWithIdleModel

export interface World {
  readonly hub: TestHub
  readonly projectId: ProjectId
  readonly taskId: TaskId
  readonly sessionId: SessionId
  readonly tokens: Record<Caller, string | undefined>
}

/**
 * A hub with one project P: `owner` owns it, `viewer` and `member` (no execute grant) belong to it,
 * `outsider` does not. Each caller of the matrix gets its token: the outsider logs in with a password
 * (a login token), the others use API keys.
 */
export const makeWorld = (hub: TestHub) =>
  Effect.gen(function* () {
    const admin = yield* makeHubClient({ transport: "tcp", host: "127.0.0.1", port: hub.tcpPort }, hub.adminKey)
    const user = (name: string) => admin.user.create({ name, password: `${name}-password`, isAdmin: false })
    const owner = yield* user("owner")
    const viewer = yield* user("viewer")
    const member = yield* user("member")
    yield* user("outsider")
    const project = yield* admin.project.create({ name: "P" })
    yield* admin.project.addMember({ projectId: project.id, user: owner.id, role: "owner" })
    yield* admin.project.addMember({ projectId: project.id, user: viewer.id, role: "viewer" })
    yield* admin.project.addMember({ projectId: project.id, user: member.id, role: "member" })
    const key = (userId: typeof owner.id, scopes: ReadonlyArray<"read" | "write" | "execute" | "worker">) =>
      Effect.map(admin.key.create({ name: `matrix ${scopes.join("+")}`, scopes, userId }), (k) => k)
    const revoked = yield* key(owner.id, ["read", "write"])
    yield* admin.key.revoke({ id: revoked.info.id })
    const task = yield* admin.task.enqueue({ projectId: project.id, kind: "chat", payload: { prompt: "hello" } })
    const session = yield* admin.session.create({ projectId: project.id })
    const login = yield* rest(hub, "POST", "/api/auth/login", { body: { name: "outsider", password: "outsider-password" } })
    const tokens: Record<Caller, string | undefined> = {
      "no token": undefined,
      "garbage token": "kiris_garbage-not-a-key",
      "revoked key": revoked.key,
      "non-member": (login.json as { token: string }).token,
      "viewer doing a change": (yield* key(viewer.id, ["read", "write"])).key,
      "read-only key doing a change": (yield* key(owner.id, ["read"])).key,
      "worker key doing a non-worker call": (yield* key(owner.id, ["worker"])).key,
      "user key doing a worker call": (yield* key(owner.id, ["read", "write", "execute"])).key,
      "member without execute enqueuing commands": (yield* key(member.id, ["read", "write", "execute"])).key
    }
    return { hub, projectId: project.id, taskId: task.id, sessionId: session.id, tokens } satisfies World
  })
