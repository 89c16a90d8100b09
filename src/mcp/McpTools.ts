import { McpSessionTools } from "./McpSessionTools.js"
import { McpTaskTools } from "./McpTaskTools.js"
import type { McpTool } from "./McpTool.js"

/**
 * The MCP tools of Kiris, shared by `kiris mcp` (stdio) and the hub's `/mcp` route, in the order
 * `tools/list` shows them: the task tools (McpTaskTools), then the session and inbox tools
 * (McpSessionTools). How a tool is defined and called is in McpTool.
 */
export const McpTools: ReadonlyArray<McpTool> = [...McpTaskTools, ...McpSessionTools]
