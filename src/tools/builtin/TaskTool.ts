import { Effect, Option, Schema } from "effect"
import { SubAgents } from "../SubAgents.js"
import { defineTool, described, fail, ToolFailure } from "../Tool.js"

export const TaskTool = defineTool({
  name: "task",
  description:
    "Hand a self-contained piece of work to a sub-agent and get its final answer back. The sub-agent starts with no memory of " +
    "this conversation, so the prompt must say everything it needs. With `remote: true` it runs on a swarm worker instead of here, " +
    "with the file tools in the worker's working directory. The result ends with the `session:` the sub-agent ran in.",
  parameters: Schema.Struct({
    prompt: described(Schema.String.pipe(Schema.minLength(1)), "Complete instructions for the sub-agent"),
    description: Schema.optional(described(Schema.String, "A short (3-5 word) label for the work")),
    agent: Schema.optional(described(Schema.String, "Which configured agent to use (default: the general agent)")),
    model: Schema.optional(described(Schema.String, "Model as `provider:model`, when not the agent's default")),
    remote: Schema.optional(described(Schema.Boolean, "Run on a swarm worker (default false)"))
  }),
  permission: (args) =>
    Effect.succeed({
      subject: args.agent ?? "general",
      kind: "name" as const,
      title: args.description ?? args.prompt.slice(0, 120)
    }),
  run: (args, ctx) =>
    Effect.gen(function* () {
      const subAgents = yield* Effect.serviceOption(SubAgents)
      if (Option.isNone(subAgents)) return yield* fail("sub-agents are not available in this context")
      const done = yield* subAgents.value
        .run(ctx, {
          prompt: args.prompt,
          remote: args.remote ?? false,
          ...(args.agent === undefined ? {} : { agent: args.agent }),
          ...(args.model === undefined ? {} : { model: args.model })
        })
        .pipe(Effect.mapError((message) => new ToolFailure({ message })))
      return {
        output: `${done.answer}\n\nsession: ${done.sessionId}`,
        metadata: { agent: args.agent ?? "general", remote: args.remote ?? false, sessionId: done.sessionId }
      }
    })
})
