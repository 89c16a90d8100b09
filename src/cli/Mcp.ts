import { Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { makeHubClient, parseHub } from "../client/HubClient.js"
import { clientOptions, reportErrors, resolveHub, resolveToken } from "./ClientOptions.js"

/**
 * `kiris mcp`: an MCP server on stdin/stdout for MCP clients (Claude Code, Codex, Cursor, …), as a
 * client of a running hub with the caller's token. stdout carries only the protocol; anything
 * else goes to stderr. The MCP SDK is loaded only when this command runs.
 */
export const mcpCommand = Command.make(
  "mcp",
  {
    ...clientOptions,
    project: Options.text("project").pipe(
      Options.withDescription('Project name or id used when a tool call names none (default: "default", created on first use)'),
      Options.optional
    )
  },
  (o) =>
    Effect.flatMap(resolveHub(o), (hub) =>
      Effect.gen(function* () {
        const token = yield* resolveToken(o)
        const client = yield* makeHubClient(parseHub(hub), token, { retryTransientErrors: true })
        // Fails here, on stderr, when the hub is unreachable or the token is refused.
        yield* client.user.whoami()
        const { makeMcpServer } = yield* Effect.promise(() => import("../mcp/McpServer.js"))
        const { StdioServerTransport } = yield* Effect.promise(() => import("@modelcontextprotocol/sdk/server/stdio.js"))
        const server = yield* makeMcpServer({ client, defaultProject: Option.getOrUndefined(o.project) })
        const transport = new StdioServerTransport()
        yield* Effect.async<void>((resume) => {
          transport.onclose = () => resume(Effect.void)
          process.stdin.once("end", () => resume(Effect.void))
          server.connect(transport).catch((e: unknown) => {
            process.stderr.write(`kiris mcp: ${e instanceof Error ? e.message : String(e)}\n`)
            resume(Effect.void)
          })
        })
      }).pipe(Effect.scoped, reportErrors(hub))
    )
).pipe(
  Command.withDescription(
    "Serve MCP (Model Context Protocol) on stdio as a client of the hub: tools to submit and watch tasks, fan out, talk to agent sessions. " +
      "Add to Claude Code with: claude mcp add kiris -- npx kiris mcp --hub HOST:PORT --token TOKEN"
  )
)
