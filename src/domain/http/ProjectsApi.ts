import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { Role } from "../Auth.js"
import { ProjectId } from "../Ids.js"
import { CreateProject, Member, Project } from "../Project.js"
import { Authentication } from "./Authentication.js"
import { Forbidden, InvalidInput, NotFound } from "./HttpErrors.js"

export class AddMember extends Schema.Class<AddMember>("AddMember")({
  /** User name or user id. */
  user: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128)),
  role: Role,
  /** Grant (true) or withdraw (false) the `execute` grant; unchanged when omitted. */
  execute: Schema.optional(Schema.Boolean)
}) {}

const ProjectPath = Schema.Struct({ projectId: ProjectId })

/** Projects and their members. A project the caller cannot see is reported as not found. */
export class ProjectsApi extends HttpApiGroup.make("projects")
  .add(HttpApiEndpoint.get("list", "/api/projects").addSuccess(Schema.Array(Project)).addError(Forbidden).annotate(Requires, Access.authenticated("read")))
  .add(
    HttpApiEndpoint.post("create", "/api/projects")
      .setPayload(CreateProject)
      .addSuccess(Project, { status: 201 })
      .addError(Forbidden)
      .addError(InvalidInput)
      .annotate(Requires, Access.authenticated("write"))
  )
  .add(
    HttpApiEndpoint.get("get", "/api/projects/:projectId")
      .setPath(ProjectPath)
      .addSuccess(Project)
      .addError(NotFound)
      .addError(Forbidden)
      .annotate(Requires, Access.project("viewer", "read"))
  )
  .add(
    HttpApiEndpoint.get("members", "/api/projects/:projectId/members")
      .setPath(ProjectPath)
      .addSuccess(Schema.Array(Member))
      .addError(NotFound)
      .addError(Forbidden)
      .annotate(Requires, Access.project("viewer", "read"))
  )
  .add(
    HttpApiEndpoint.post("addMember", "/api/projects/:projectId/members")
      .setPath(ProjectPath)
      .setPayload(AddMember)
      .addSuccess(Member)
      .addError(NotFound)
      .addError(Forbidden)
      .addError(InvalidInput)
      .annotate(Requires, Access.project("admin", "write"))
  )
  .add(
    HttpApiEndpoint.del("removeMember", "/api/projects/:projectId/members/:user")
      .setPath(Schema.Struct({ projectId: ProjectId, user: Schema.String }))
      .addError(NotFound)
      .addError(Forbidden)
      .addError(InvalidInput)
      .annotate(Requires, Access.project("admin", "write"))
  )
  // Every operation here can be refused by the authorization path (see domain/Access.ts).
  .addError(Forbidden)
  .addError(NotFound)
  .middleware(Authentication) {}
