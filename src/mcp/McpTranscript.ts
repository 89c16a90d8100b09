import { Effect, Option } from "effect"
import type { HubRpcClient } from "../client/HubClient.js"
import { InvalidInput } from "../domain/Errors.js"
import type { ProjectId, SessionId } from "../domain/Ids.js"
import type { SessionHistory } from "../domain/Session.js"

/** A session's transcript for the `kiris://sessions/{id}/transcript` resource: finding the session, rendering it as text. */

/** The session that holds a session id, among the projects the caller sees. */
export const findSession = (client: HubRpcClient, sessionId: SessionId) =>
  Effect.gen(function* () {
    const projects = yield* client.project.list()
    for (const p of projects) {
      const found = yield* Effect.option(client.session.get({ projectId: p.id as ProjectId, sessionId }))
      if (Option.isSome(found)) return found.value
    }
    return yield* new InvalidInput({ reason: `no session ${sessionId} visible to this caller` })
  })

/** A transcript as plain text: one block per message. */
export const transcriptText = (history: SessionHistory): string =>
  [
    `# ${history.session.title || history.session.id} (${history.session.model}, ${history.session.status})`,
    ...history.messages.map((m) => {
      const body = m.parts
        .map((p) =>
          p.data._tag === "text"
            ? p.data.text
            : p.data._tag === "tool"
              ? `[tool ${p.data.tool} ${p.data.status}]`
              : p.data._tag === "reasoning"
                ? `[reasoning] ${p.data.text}`
                : ""
        )
        .filter((s) => s !== "")
        .join("\n")
      return `## ${m.message.role} (${m.message.status})\n${body}`
    })
  ].join("\n\n")
