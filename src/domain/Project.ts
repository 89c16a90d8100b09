import { Schema } from "effect"
import { ProjectId, UserId } from "./Ids.js"
import { Role } from "./Auth.js"

export class Project extends Schema.Class<Project>("Project")({
  id: ProjectId,
  name: Schema.String,
  description: Schema.String,
  /** Absolute path of the project's workspace (agent tools and shared workdirs are confined to it). */
  workspace: Schema.String,
  createdAt: Schema.Number,
  /** The caller's role in this project, when listed for a caller. */
  role: Schema.optional(Role)
}) {}

export class CreateProject extends Schema.Class<CreateProject>("CreateProject")({
  name: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128)),
  description: Schema.optionalWith(Schema.String, { default: () => "" }),
  /** Use an existing directory as the workspace instead of `<data-dir>/projects/<id>/files`. */
  workspace: Schema.optional(Schema.String)
}) {}

export class Member extends Schema.Class<Member>("Member")({
  projectId: ProjectId,
  userId: UserId,
  userName: Schema.String,
  role: Role,
  /**
   * Holds the `execute` grant: may run commands (shell, python, custom cli, the agent's bash tool)
   * on this project's workers. Server admins hold it in every project.
   */
  execute: Schema.Boolean,
  addedAt: Schema.Number
}) {}
