import { Schema } from "effect"
import { Member, Project } from "./Project.js"
import { ProjectId, UserId } from "./Ids.js"

export const ProjectCreated = Schema.TaggedStruct("ProjectCreated", { project: Project })
/** Name or description changed. */
export const ProjectUpdated = Schema.TaggedStruct("ProjectUpdated", { project: Project })
/** The project is gone: its database and managed workspace were removed; its subscriptions end. */
export const ProjectDeleted = Schema.TaggedStruct("ProjectDeleted", { projectId: ProjectId })
export const MemberAdded = Schema.TaggedStruct("MemberAdded", { member: Member })
export const MemberRemoved = Schema.TaggedStruct("MemberRemoved", { userId: UserId })

export const ProjectEvent = Schema.Union(ProjectCreated, ProjectUpdated, ProjectDeleted, MemberAdded, MemberRemoved)
export type ProjectEvent = typeof ProjectEvent.Type
