import type { SqlClient } from "@effect/sql"
import { Context, type Effect } from "effect"
import type { SessionId } from "../domain/Ids.js"
import type { CurrentProject } from "../storage/ProjectDb.js"
import type { ToolContext } from "./Tool.js"

/** What a sub-agent returns: its final text and the child session it ran in (for clients to open). */
export interface SubAgentAnswer {
  readonly answer: string
  readonly sessionId: SessionId
}

/**
 * Runs a sub-agent for the `task` tool: a child session (or, with `remote`, a swarm task) that
 * answers `prompt` and returns its final text with the child session's id; a failure is the
 * message the model sees (naming the child session once there is one).
 * The `task` tool looks this service up in the context its turn runs in (the orchestrator provides
 * it around `toolsFor`), so ToolRegistry never depends on the orchestrator's layer.
 */
export class SubAgents extends Context.Tag("kiris/SubAgents")<
  SubAgents,
  {
    readonly run: (
      parent: ToolContext,
      input: { prompt: string; agent?: string; model?: string; remote: boolean }
    ) => Effect.Effect<SubAgentAnswer, string, SqlClient.SqlClient | CurrentProject>
  }
>() {}
