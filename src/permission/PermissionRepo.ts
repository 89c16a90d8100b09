import { SqlClient } from "@effect/sql"
import { Clock, Effect, Option, Schema } from "effect"
import { MessageId, PermissionRequestId, SessionId } from "../domain/Ids.js"
import { PermissionAction, PermissionReply, PermissionRequest, PermissionRequestStatus, PermissionRule } from "../domain/Permission.js"
import { CurrentProject } from "../storage/ProjectDb.js"
import { decodedOrDie, Int, NullableInt } from "../storage/Rows.js"

const RequestRow = Schema.Struct({
  id: PermissionRequestId,
  session_id: SessionId,
  message_id: MessageId,
  tool_call_id: Schema.NullOr(Schema.String),
  tool: Schema.String,
  subject: Schema.String,
  title: Schema.String,
  input: Schema.parseJson(),
  requested_by: Schema.String,
  status: PermissionRequestStatus,
  reply: Schema.NullOr(PermissionReply),
  message: Schema.NullOr(Schema.String),
  replied_by: Schema.NullOr(Schema.String),
  created_at: Int,
  replied_at: NullableInt
})

const RuleRow = Schema.Struct({
  id: Schema.String,
  /** "" for a project rule, else the session it overrides for. */
  scope: Schema.Union(Schema.Literal(""), SessionId),
  tool: Schema.String,
  pattern: Schema.String,
  action: PermissionAction,
  created_by: Schema.NullOr(Schema.String),
  created_at: Int
})

const PROJECT_SCOPE = ""

const decodeRequests = (rows: ReadonlyArray<unknown>) =>
  Effect.flatMap(CurrentProject, (projectId) =>
    Effect.map(Schema.decodeUnknown(Schema.Array(RequestRow))(rows), (decoded) =>
      decoded.map((r) =>
        PermissionRequest.make({
          id: r.id,
          projectId,
          sessionId: r.session_id,
          messageId: r.message_id,
          toolCallId: r.tool_call_id,
          tool: r.tool,
          subject: r.subject,
          title: r.title,
          input: r.input,
          requestedBy: r.requested_by,
          status: r.status,
          reply: r.reply,
          message: r.message,
          repliedBy: r.replied_by,
          createdAt: r.created_at,
          repliedAt: r.replied_at
        })
      )
    )
  )

const decodeRules = (rows: ReadonlyArray<unknown>) =>
  Effect.map(Schema.decodeUnknown(Schema.Array(RuleRow))(rows), (decoded) =>
    decoded.map((r) =>
      PermissionRule.make({
        id: r.id,
        source: r.scope === PROJECT_SCOPE ? "project" : "session",
        sessionId: r.scope === PROJECT_SCOPE ? null : r.scope,
        tool: r.tool,
        pattern: r.pattern,
        action: r.action,
        createdBy: r.created_by,
        createdAt: r.created_at
      })
    )
  )

export interface Resolution {
  readonly status: PermissionRequestStatus
  readonly reply: PermissionReply | null
  readonly message: string | null
  readonly repliedBy: string | null
}

/**
 * Permission requests and stored rules in the current project's database. A local SQLite failure
 * is a defect.
 */
export class PermissionRepo extends Effect.Service<PermissionRepo>()("kiris/PermissionRepo", {
  succeed: {
    insertRequest: (r: PermissionRequest) =>
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) =>
          sql`INSERT INTO permission_requests (id, session_id, message_id, tool_call_id, tool, subject, title, input,
          requested_by, status, reply, message, replied_by, created_at, replied_at)
          VALUES (${r.id}, ${r.sessionId}, ${r.messageId}, ${r.toolCallId}, ${r.tool}, ${r.subject}, ${r.title},
          ${JSON.stringify(r.input ?? null)}, ${r.requestedBy}, ${r.status}, ${r.reply}, ${r.message}, ${r.repliedBy},
          ${r.createdAt}, ${r.repliedAt})`
      ).pipe(Effect.orDie, Effect.asVoid),

    getRequest: (id: PermissionRequestId) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT * FROM permission_requests WHERE id = ${id}`).pipe(
        Effect.flatMap(decodeRequests),
        Effect.map((rows) => Option.fromNullable(rows[0])),
        decodedOrDie("permission_requests by id")
      ),

    listPending: (sessionId: SessionId | undefined) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sessionId === undefined
          ? sql`SELECT * FROM permission_requests WHERE status = 'pending' ORDER BY created_at, id`
          : sql`SELECT * FROM permission_requests WHERE status = 'pending' AND session_id = ${sessionId} ORDER BY created_at, id`
      ).pipe(Effect.flatMap(decodeRequests), decodedOrDie("pending permission_requests")),

    listPendingForMessage: (messageId: MessageId) =>
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql`SELECT * FROM permission_requests WHERE status = 'pending' AND message_id = ${messageId} ORDER BY created_at, id`
      ).pipe(Effect.flatMap(decodeRequests), decodedOrDie("pending permission_requests of a message")),

    /** Moves a pending request to its final state; `None` if it was no longer pending. */
    resolve: (id: PermissionRequestId, r: Resolution) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const now = yield* Clock.currentTimeMillis
        return yield* sql`UPDATE permission_requests SET status = ${r.status}, reply = ${r.reply}, message = ${r.message},
          replied_by = ${r.repliedBy}, replied_at = ${now}
          WHERE id = ${id} AND status = 'pending' RETURNING *`
      }).pipe(
        Effect.flatMap(decodeRequests),
        Effect.map((rows) => Option.fromNullable(rows[0])),
        decodedOrDie("resolved permission_requests row")
      ),

    /** Project rules, plus the overrides of `sessionId` when given. */
    listRules: (sessionId: SessionId | undefined) =>
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) =>
          sql`SELECT * FROM permission_rules WHERE scope = ${PROJECT_SCOPE} OR scope = ${sessionId ?? PROJECT_SCOPE}
          ORDER BY created_at, id`
      ).pipe(Effect.flatMap(decodeRules), decodedOrDie("permission_rules")),

    /** Inserts a rule, or changes the action of the rule with the same scope, tool and pattern. */
    upsertRule: (rule: { id: string; sessionId: SessionId | null; tool: string; pattern: string; action: PermissionAction; createdBy: string }) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const now = yield* Clock.currentTimeMillis
        return yield* sql`INSERT INTO permission_rules (id, scope, tool, pattern, action, created_by, created_at)
          VALUES (${rule.id}, ${rule.sessionId ?? PROJECT_SCOPE}, ${rule.tool}, ${rule.pattern}, ${rule.action},
          ${rule.createdBy}, ${now})
          ON CONFLICT (scope, tool, pattern) DO UPDATE SET action = excluded.action, created_by = excluded.created_by,
          created_at = excluded.created_at
          RETURNING *`
      }).pipe(
        Effect.flatMap(decodeRules),
        decodedOrDie("upserted permission_rules row"),
        Effect.flatMap((rows) => (rows[0] === undefined ? Effect.dieMessage("upsert returned no row") : Effect.succeed(rows[0])))
      ),

    removeRule: (id: string) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DELETE FROM permission_rules WHERE id = ${id} RETURNING id`).pipe(
        Effect.map((rows) => rows.length > 0),
        Effect.orDie
      )
  }
}) {}
