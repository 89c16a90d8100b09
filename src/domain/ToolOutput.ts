import { Schema } from "effect"

/**
 * What one tool call returns: its output text (plus optional structured metadata) or the error the
 * model sees. Invalid arguments, refused permissions and tool failures are all `ok: false`.
 */
export const ToolOutput = Schema.Union(
  Schema.Struct({
    ok: Schema.Literal(true),
    output: Schema.String,
    metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
  }),
  Schema.Struct({ ok: Schema.Literal(false), error: Schema.String })
)
export type ToolOutput = typeof ToolOutput.Type
