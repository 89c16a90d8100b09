import { Effect, Option } from "effect"
import type { Role } from "../domain/Auth.js"
import type { ProjectId, UserId } from "../domain/Ids.js"
import { Member, Project } from "../domain/Project.js"
import { outsideTransaction, RootDb } from "../storage/RootDb.js"

interface ProjectRow {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly workspace: string
  readonly created_at: number
  readonly role?: string | null
}
interface MemberRow {
  readonly project_id: string
  readonly user_id: string
  readonly user_name: string
  readonly role: string
  readonly can_execute: number
  readonly user_is_admin: number
  readonly added_at: number
}

const toProject = (r: ProjectRow) =>
  Project.make({
    id: r.id as ProjectId,
    name: r.name,
    description: r.description,
    workspace: r.workspace,
    createdAt: r.created_at,
    ...(r.role ? { role: r.role as Role } : {})
  })
const toMember = (r: MemberRow) =>
  Member.make({
    projectId: r.project_id as ProjectId,
    userId: r.user_id as UserId,
    userName: r.user_name,
    role: r.role as Role,
    execute: r.can_execute === 1 || r.user_is_admin === 1,
    addedAt: r.added_at
  })

/** Root-database tables of projects and memberships. */
export class ProjectsRepo extends Effect.Service<ProjectsRepo>()("kiris/ProjectsRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* RootDb
    const run = <A, E>(eff: Effect.Effect<A, E>) => outsideTransaction(eff).pipe(Effect.orDie)

    const member = (projectId: ProjectId, userId: UserId) =>
      run(
        sql<MemberRow>`SELECT m.*, u.name AS user_name, u.is_admin AS user_is_admin FROM members m JOIN users u ON u.id = m.user_id
                       WHERE m.project_id = ${projectId} AND m.user_id = ${userId}`
      ).pipe(Effect.map((rows) => Option.fromNullable(rows[0]).pipe(Option.map(toMember))))

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
        run(
          sql.withTransaction(
            Effect.zipRight(sql`DELETE FROM members WHERE project_id = ${id}`, sql`DELETE FROM projects WHERE id = ${id}`)
          )
        ).pipe(Effect.asVoid),
      get: (id: ProjectId) =>
        run(sql<ProjectRow>`SELECT * FROM projects WHERE id = ${id}`).pipe(Effect.map((rows) => Option.fromNullable(rows[0]).pipe(Option.map(toProject)))),
      listAll: run(sql<ProjectRow>`SELECT * FROM projects ORDER BY created_at`).pipe(Effect.map((rows) => rows.map(toProject))),
      listFor: (userId: UserId) =>
        run(
          sql<ProjectRow>`SELECT p.*, m.role AS role FROM projects p JOIN members m ON m.project_id = p.id
                          WHERE m.user_id = ${userId} ORDER BY p.created_at`
        ).pipe(Effect.map((rows) => rows.map(toProject))),
      member,
      members: (projectId: ProjectId) =>
        run(
          sql<MemberRow>`SELECT m.*, u.name AS user_name, u.is_admin AS user_is_admin FROM members m JOIN users u ON u.id = m.user_id
                         WHERE m.project_id = ${projectId} ORDER BY m.added_at`
        ).pipe(Effect.map((rows) => rows.map(toMember))),
      /** `execute` undefined keeps a member's grant (a new member starts without it). */
      upsertMember: (projectId: ProjectId, userId: UserId, role: Role, execute: boolean | undefined) =>
        run(
          sql`INSERT INTO members (project_id, user_id, role, can_execute, added_at)
              VALUES (${projectId}, ${userId}, ${role}, ${execute === true ? 1 : 0}, ${Date.now()})
              ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role,
                can_execute = CASE WHEN ${execute === undefined ? 1 : 0} = 1 THEN members.can_execute ELSE excluded.can_execute END`
        ).pipe(Effect.zipRight(member(projectId, userId)), Effect.map(Option.getOrThrow)),
      removeMember: (projectId: ProjectId, userId: UserId) =>
        run(sql`DELETE FROM members WHERE project_id = ${projectId} AND user_id = ${userId}`).pipe(Effect.asVoid),
      ownerCount: (projectId: ProjectId) =>
        run(sql<{ n: number }>`SELECT count(*) AS n FROM members WHERE project_id = ${projectId} AND role = 'owner'`).pipe(
          Effect.map((r) => r[0]?.n ?? 0)
        )
    } as const
  })
}) {}
