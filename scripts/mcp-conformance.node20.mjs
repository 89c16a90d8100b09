// Lets the MCP conformance CLI run on Node 20: it imports `globSync` from `fs` (Node 22+), which it
// uses only to summarise result directories. Its `fs` import is served by a module that re-exports
// node:fs and adds a `globSync` finding nothing. Load with `node --import ./scripts/mcp-conformance.node20.mjs`.
import { register } from "node:module"

const shim = `export * from "node:fs"; import * as fs from "node:fs"; export default fs; export const globSync = fs.globSync ?? (() => []);`
const hooks = `
export async function resolve(specifier, context, next) {
  if ((specifier === "fs" || specifier === "node:fs") && (context.parentURL ?? "").includes("/@modelcontextprotocol/conformance/")) {
    return { url: ${JSON.stringify(`data:text/javascript,${encodeURIComponent(shim)}`)}, shortCircuit: true }
  }
  return next(specifier, context)
}`
register(`data:text/javascript,${encodeURIComponent(hooks)}`)
