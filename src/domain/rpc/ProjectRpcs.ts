import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Role } from "../Auth.js"
import { Forbidden, InvalidInput, NotFound } from "../Errors.js"
import { ProjectId } from "../Ids.js"
import { CreateProject, Member, Project } from "../Project.js"
import { AuthMiddleware } from "./Middleware.js"

export class ProjectRpcs extends RpcGroup.make(
  Rpc.make("create", { payload: CreateProject, success: Project, error: Schema.Union(Forbidden, InvalidInput) }),
  Rpc.make("list", { success: Schema.Array(Project) }),
  Rpc.make("get", { payload: { projectId: ProjectId }, success: Project, error: Schema.Union(NotFound, Forbidden) }),
  Rpc.make("members", {
    payload: { projectId: ProjectId },
    success: Schema.Array(Member),
    error: Schema.Union(NotFound, Forbidden)
  }),
  Rpc.make("addMember", {
    payload: { projectId: ProjectId, user: Schema.String, role: Role },
    success: Member,
    error: Schema.Union(NotFound, Forbidden, InvalidInput)
  }),
  Rpc.make("removeMember", {
    payload: { projectId: ProjectId, user: Schema.String },
    success: Schema.Void,
    error: Schema.Union(NotFound, Forbidden, InvalidInput)
  })
).prefix("project.").middleware(AuthMiddleware) {}

