// Reports on stderr every module of the MCP SDK that the process resolves (for the `kiris --help` test).
import { register } from "node:module"

const hooks = `
export async function resolve(specifier, context, next) {
  if (specifier.includes("@modelcontextprotocol/sdk")) process.stderr.write("MCP SDK RESOLVED " + specifier + "\\n")
  return next(specifier, context)
}`
register(`data:text/javascript,${encodeURIComponent(hooks)}`)
