import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { Role } from "../Auth.js"
import { ConfirmMismatch, Forbidden, InvalidInput, NotFound } from "../Errors.js"
import { DeleteProject, UpdateProject } from "../http/ProjectsApi.js"
import { ProjectId } from "../Ids.js"
import { CreateProject, Member, Project } from "../Project.js"
import { AuthMiddleware } from "./Middleware.js"

export class ProjectRpcs extends RpcGroup.make(
  Rpc.make("create", { payload: CreateProject, success: Project, error: Schema.Union(Forbidden, InvalidInput) }).annotate(
    Requires,
    Access.authenticated("write")
  ),
  Rpc.make("list", { success: Schema.Array(Project) }).annotate(Requires, Access.authenticated("read")),
  Rpc.make("get", { payload: { projectId: ProjectId }, success: Project, error: Schema.Union(NotFound, Forbidden) }).annotate(
    Requires,
    Access.project("viewer", "read")
  ),
  Rpc.make("members", {
    payload: { projectId: ProjectId },
    success: Schema.Array(Member),
    error: Schema.Union(NotFound, Forbidden)
  }).annotate(Requires, Access.project("viewer", "read")),
  Rpc.make("addMember", {
    payload: {
      projectId: ProjectId,
      user: Schema.String,
      role: Role,
      /** Grant (true) or withdraw (false) the `execute` grant; unchanged when omitted. */
      execute: Schema.optional(Schema.Boolean)
    },
    success: Member,
    error: Schema.Union(NotFound, Forbidden, InvalidInput)
  }).annotate(Requires, Access.project("admin", "write")),
  Rpc.make("removeMember", {
    payload: { projectId: ProjectId, user: Schema.String },
    success: Schema.Void,
    error: Schema.Union(NotFound, Forbidden, InvalidInput)
  }).annotate(Requires, Access.project("admin", "write")),
  /** Changes the name or description (owners). */
  Rpc.make("update", {
    payload: { projectId: ProjectId, ...UpdateProject.fields },
    success: Project,
    error: Schema.Union(NotFound, Forbidden, InvalidInput)
  }).annotate(Requires, Access.project("owner", "write")),
  /**
   * Deletes the project with its database and managed workspace (owners), once `confirm` repeats
   * its name; a workspace directory chosen outside the hub's data dir stays.
   */
  Rpc.make("delete", {
    payload: { projectId: ProjectId, ...DeleteProject.fields },
    success: Schema.Void,
    error: Schema.Union(NotFound, Forbidden, ConfirmMismatch)
  }).annotate(Requires, Access.project("owner", "write"))
)
  .prefix("project.")
  .middleware(AuthMiddleware) {}
