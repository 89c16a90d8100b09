import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { Role } from "../Auth.js"
import { Forbidden, InvalidInput, NotFound } from "../Errors.js"
import { ProjectId } from "../Ids.js"
import { CreateProject, Member, Project } from "../Project.js"
import { AuthMiddleware } from "./Middleware.js"

export class ProjectRpcs extends RpcGroup.make(
  Rpc.make("create", { payload: CreateProject, success: Project, error: Schema.Union(Forbidden, InvalidInput) }).annotate(Requires, Access.authenticated("write")),
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
  }).annotate(Requires, Access.project("admin", "write"))
).prefix("project.").middleware(AuthMiddleware) {}

