import { Schema } from "effect"
import { Member, Project } from "./Project.js"
import { UserId } from "./Ids.js"

export const ProjectCreated = Schema.TaggedStruct("ProjectCreated", { project: Project })
export const MemberAdded = Schema.TaggedStruct("MemberAdded", { member: Member })
export const MemberRemoved = Schema.TaggedStruct("MemberRemoved", { userId: UserId })

export const ProjectEvent = Schema.Union(ProjectCreated, MemberAdded, MemberRemoved)
export type ProjectEvent = typeof ProjectEvent.Type
