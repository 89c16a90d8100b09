import type { SqlClient } from "@effect/sql"
import { Context, type Effect } from "effect"
import type { CurrentProject } from "../storage/ProjectDb.js"
import type { ToolContext } from "./ToolRegistry.js"

/**
 * Runs a sub-agent for the `task` tool: a child session (or, with `remote`, a swarm task) that
 * answers `prompt` and returns its final text; a failure is the message the model sees.
 * The `task` tool looks this service up in the context its turn runs in (the orchestrator provides
 * it around `toolsFor`), so ToolRegistry never depends on the orchestrator's layer.
 */
export class SubAgents extends Context.Tag("kiris/SubAgents")<
  SubAgents,
  {
    readonly run: (
      parent: ToolContext,
      input: { prompt: string; agent?: string; model?: string; remote: boolean }
    ) => Effect.Effect<string, string, SqlClient.SqlClient | CurrentProject>
  }
>() {}
