import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { Principal } from "../domain/Auth.js"
import type { SessionId } from "../domain/Ids.js"
import type { SessionInfo } from "../domain/Session.js"
import type { CurrentProject } from "../storage/ProjectDb.js"
import type { SubAgents } from "../tools/SubAgents.js"
import type { ToolContext } from "../tools/ToolRegistry.js"
import type { TurnOutcome } from "./TurnRunner.js"

export interface SubAgentDeps {
  /** Creates the child session (validating agent and model). */
  readonly createChild: (
    parent: ToolContext,
    input: { readonly title: string; readonly agent: string; readonly model: string | undefined }
  ) => Effect.Effect<SessionInfo, string, SqlClient.SqlClient | CurrentProject>
  /** Runs a turn on the (new, idle) child session and waits for it; interrupting the wait cancels it. */
  readonly runLocal: (
    caller: Principal,
    sessionId: SessionId,
    prompt: string
  ) => Effect.Effect<TurnOutcome, string, SqlClient.SqlClient | CurrentProject>
  /** Hands the child's turn to a swarm worker and waits for its answer (the text of its last step). */
  readonly runRemote: (parent: ToolContext, child: SessionInfo, prompt: string) => Effect.Effect<string, string, SqlClient.SqlClient | CurrentProject>
}

const firstLine = (text: string) => {
  const line = text.trim().split("\n")[0] ?? ""
  return line.length > 60 ? `${line.slice(0, 57)}...` : line
}

const answerText = (answer: string) => (answer === "" ? "(the sub-agent finished without an answer)" : answer)

/**
 * The `task` tool's sub-agents: each runs in a child session of the calling turn's session, so its
 * parts are recorded and published like any turn's. Local ones run here; remote ones on a worker.
 * The sub-agent's answer is the text of its last step; it comes back with the child session's id.
 */
export const makeSubAgents = (deps: SubAgentDeps): SubAgents["Type"] => ({
  run: (parent, input) =>
    Effect.gen(function* () {
      const child = yield* deps.createChild(parent, {
        title: `sub-agent: ${firstLine(input.prompt)}`,
        agent: input.agent ?? "general",
        model: input.model
      })
      if (input.remote) {
        const answer = yield* deps.runRemote(parent, child, input.prompt)
        return { answer: answerText(answer), sessionId: child.id }
      }
      const outcome = yield* deps.runLocal(parent.caller, child.id, input.prompt)
      if (outcome.status !== "completed") {
        return yield* Effect.fail(`sub-agent (session ${child.id}) ${outcome.status}: ${outcome.error ?? "no answer"}`)
      }
      return { answer: answerText(outcome.answer), sessionId: child.id }
    }).pipe(Effect.withSpan("SubAgents.run", { attributes: { sessionId: parent.sessionId, remote: input.remote } }))
})
