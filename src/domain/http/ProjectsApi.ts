import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { Role } from "../Auth.js"
import { ProjectId, SessionId } from "../Ids.js"
import { CreateProject, Member, Project } from "../Project.js"
import { SessionInfo, SessionTitle } from "../Session.js"
import { Authentication } from "./Authentication.js"
import { ConfirmMismatch, Forbidden, InvalidInput, NotFound } from "./HttpErrors.js"

export class AddMember extends Schema.Class<AddMember>("AddMember")({
  /** User name or user id. */
  user: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128)),
  role: Role,
  /** Grant (true) or withdraw (false) the `execute` grant; unchanged when omitted. */
  execute: Schema.optional(Schema.Boolean)
}) {}

/** The fields of a project its owner may change; the others stay. */
export class UpdateProject extends Schema.Class<UpdateProject>("UpdateProject")({
  name: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128))),
  description: Schema.optional(Schema.String.pipe(Schema.maxLength(2000)))
}) {}

/** Deleting a project needs its name repeated. */
export class DeleteProject extends Schema.Class<DeleteProject>("DeleteProject")({
  confirm: Schema.String
}) {}

/** Renames a session and/or archives (`true`) or unarchives (`false`) it. */
export class UpdateSession extends Schema.Class<UpdateSession>("UpdateSession")({
  title: Schema.optional(SessionTitle),
  archived: Schema.optional(Schema.Boolean)
}) {}

const ProjectPath = Schema.Struct({ projectId: ProjectId })
const SessionPath = Schema.Struct({ projectId: ProjectId, sessionId: SessionId })

/** Projects, their members and their agent sessions. A project the caller cannot see is reported as not found. */
export class ProjectsApi extends HttpApiGroup.make("projects")
  .add(
    HttpApiEndpoint.get("list", "/api/projects")
      .addSuccess(Schema.Array(Project))
      .addError(Forbidden)
      .annotate(Requires, Access.authenticated("read"))
  )
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
  .add(
    HttpApiEndpoint.patch("update", "/api/projects/:projectId")
      .setPath(ProjectPath)
      .setPayload(UpdateProject)
      .addSuccess(Project)
      .addError(NotFound)
      .addError(Forbidden)
      .addError(InvalidInput)
      .annotate(Requires, Access.project("owner", "write"))
  )
  .add(
    HttpApiEndpoint.del("delete", "/api/projects/:projectId")
      .setPath(ProjectPath)
      .setPayload(DeleteProject)
      .addError(NotFound)
      .addError(Forbidden)
      .addError(ConfirmMismatch)
      .annotate(Requires, Access.project("owner", "write"))
  )
  .add(
    HttpApiEndpoint.get("sessions", "/api/projects/:projectId/sessions")
      .setPath(ProjectPath)
      .setUrlParams(Schema.Struct({ includeArchived: Schema.optional(Schema.BooleanFromString) }))
      .addSuccess(Schema.Array(SessionInfo))
      .addError(NotFound)
      .addError(Forbidden)
      .annotate(Requires, Access.project("viewer", "read"))
  )
  .add(
    HttpApiEndpoint.patch("updateSession", "/api/projects/:projectId/sessions/:sessionId")
      .setPath(SessionPath)
      .setPayload(UpdateSession)
      .addSuccess(SessionInfo)
      .addError(NotFound)
      .addError(Forbidden)
      .addError(InvalidInput)
      .annotate(Requires, Access.project("member", "write"))
  )
  .add(
    HttpApiEndpoint.del("deleteSession", "/api/projects/:projectId/sessions/:sessionId")
      .setPath(SessionPath)
      .addError(NotFound)
      .addError(Forbidden)
      .annotate(Requires, Access.project("member", "write"))
  )
  // Every operation here can be refused by the authorization path (see domain/Access.ts).
  .addError(Forbidden)
  .addError(NotFound)
  .middleware(Authentication) {}
