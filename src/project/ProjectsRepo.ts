import { SqlSchema } from "@effect/sql"
import { Clock, Effect, Option, Schema } from "effect"
import { Role } from "../domain/Auth.js"
import { ProjectId, UserId } from "../domain/Ids.js"
import { Member, Project } from "../domain/Project.js"
import { outsideTransaction, RootDb } from "../storage/RootDb.js"
import { CountRow, decodedOrDie, Flag, Int } from "../storage/Rows.js"

const ProjectRow = Schema.Struct({
  id: ProjectId,
  name: Schema.String,
  description: Schema.String,
  workspace: Schema.String,
  created_at: Int,
  role: Schema.optional(Schema.NullOr(Role))
})
const MemberRow = Schema.Struct({
  project_id: ProjectId,
  user_id: UserId,
  user_name: Schema.String,
  role: Role,
  can_execute: Flag,
  user_is_admin: Flag,
  added_at: Int
})

const toProject = (r: typeof ProjectRow.Type) =>
  Project.make({
    id: r.id,
    name: r.name,
    description: r.description,
    workspace: r.workspace,
    createdAt: r.created_at,
    ...(r.role ? { role: r.role } : {})
  })
const toMember = (r: typeof MemberRow.Type) =>
  Member.make({
    projectId: r.project_id,
    userId: r.user_id,
    userName: r.user_name,
    role: r.role,
    execute: r.can_execute || r.user_is_admin,
    addedAt: r.added_at
  })

/** Root-database tables of projects and memberships. */
export class ProjectsRepo extends Effect.Service<ProjectsRepo>()("kiris/ProjectsRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* RootDb
    const run = <A, E>(eff: Effect.Effect<A, E>) => outsideTransaction(eff).pipe(Effect.orDie)

    const MemberKey = Schema.Struct({ projectId: ProjectId, userId: UserId })
    const memberRow = SqlSchema.findOne({
      Request: MemberKey,
      Result: MemberRow,
      execute: (k) =>
        sql`SELECT m.*, u.name AS user_name, u.is_admin AS user_is_admin FROM members m JOIN users u ON u.id = m.user_id
                       WHERE m.project_id = ${k.projectId} AND m.user_id = ${k.userId}`
    })
    const member = (projectId: ProjectId, userId: UserId) =>
      outsideTransaction(memberRow({ projectId, userId })).pipe(decodedOrDie("members by project and user"), Effect.map(Option.map(toMember)))
    const get = SqlSchema.findOne({ Request: ProjectId, Result: ProjectRow, execute: (id) => sql`SELECT * FROM projects WHERE id = ${id}` })
    const listAll = SqlSchema.findAll({ Request: Schema.Void, Result: ProjectRow, execute: () => sql`SELECT * FROM projects ORDER BY created_at` })
    const listFor = SqlSchema.findAll({
      Request: UserId,
      Result: ProjectRow,
      execute: (userId) =>
        sql`SELECT p.*, m.role AS role FROM projects p JOIN members m ON m.project_id = p.id
                          WHERE m.user_id = ${userId} ORDER BY p.created_at`
    })
    const members = SqlSchema.findAll({
      Request: ProjectId,
      Result: MemberRow,
      execute: (projectId) =>
        sql`SELECT m.*, u.name AS user_name, u.is_admin AS user_is_admin FROM members m JOIN users u ON u.id = m.user_id
                         WHERE m.project_id = ${projectId} ORDER BY m.added_at`
    })
    const ownerCount = SqlSchema.single({
      Request: ProjectId,
      Result: CountRow,
      execute: (projectId) => sql`SELECT count(*) AS n FROM members WHERE project_id = ${projectId} AND role = 'owner'`
    })

    return {
      insert: (p: Project, owner: UserId) =>
        run(
          sql.withTransaction(
            Effect.zipRight(
              sql`INSERT INTO projects (id, name, description, workspace, created_at)
                  VALUES (${p.id}, ${p.name}, ${p.description}, ${p.workspace}, ${p.createdAt})`,
              sql`INSERT INTO members (project_id, user_id, role, added_at) VALUES (${p.id}, ${owner}, 'owner', ${p.createdAt})`
            )
          )
        ).pipe(Effect.asVoid),
      /** Changes the fields given; the others stay. */
      update: (id: ProjectId, fields: { readonly name?: string | undefined; readonly description?: string | undefined }) =>
        run(
          sql`UPDATE projects SET name = COALESCE(${fields.name ?? null}, name), description = COALESCE(${fields.description ?? null}, description)
              WHERE id = ${id}`
        ).pipe(Effect.asVoid),
      /** Deletes the project's row and its memberships. */
      remove: (id: ProjectId) =>
        run(sql.withTransaction(Effect.zipRight(sql`DELETE FROM members WHERE project_id = ${id}`, sql`DELETE FROM projects WHERE id = ${id}`))).pipe(
          Effect.asVoid
        ),
      get: (id: ProjectId) => outsideTransaction(get(id)).pipe(decodedOrDie("projects by id"), Effect.map(Option.map(toProject))),
      listAll: outsideTransaction(listAll(undefined)).pipe(
        decodedOrDie("projects"),
        Effect.map((rows) => rows.map(toProject))
      ),
      listFor: (userId: UserId) =>
        outsideTransaction(listFor(userId)).pipe(
          decodedOrDie("projects of a member"),
          Effect.map((rows) => rows.map(toProject))
        ),
      member,
      members: (projectId: ProjectId) =>
        outsideTransaction(members(projectId)).pipe(
          decodedOrDie("members of a project"),
          Effect.map((rows) => rows.map(toMember))
        ),
      /** `execute` undefined keeps a member's grant (a new member starts without it). */
      upsertMember: (projectId: ProjectId, userId: UserId, role: Role, execute: boolean | undefined) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          run(
            sql`INSERT INTO members (project_id, user_id, role, can_execute, added_at)
              VALUES (${projectId}, ${userId}, ${role}, ${execute === true ? 1 : 0}, ${now})
              ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role,
                can_execute = CASE WHEN ${execute === undefined ? 1 : 0} = 1 THEN members.can_execute ELSE excluded.can_execute END`
          )
        ).pipe(
          Effect.zipRight(member(projectId, userId)),
          Effect.flatMap(
            Option.match({
              onNone: () => Effect.dieMessage(`member ${userId} of project ${projectId} missing right after being written`),
              onSome: Effect.succeed
            })
          )
        ),
      removeMember: (projectId: ProjectId, userId: UserId) =>
        run(sql`DELETE FROM members WHERE project_id = ${projectId} AND user_id = ${userId}`).pipe(Effect.asVoid),
      ownerCount: (projectId: ProjectId) =>
        outsideTransaction(ownerCount(projectId)).pipe(
          decodedOrDie("owners count of a project"),
          Effect.map((r) => r.n)
        )
    } as const
  })
}) {}
