import type { ToolSet } from "ai"

/** An agent: what the model is told it is, and which tools it gets. */
export interface AgentSpec {
  readonly name: string
  readonly description: string
  /** Tool names the agent may call; `all` means every registered tool. */
  readonly tools: "all" | ReadonlyArray<string>
  readonly exclude?: ReadonlyArray<string>
  readonly instructions: string
}

const base = (workspace: string) =>
  `You are Kiris, a software agent working in the project workspace at ${workspace}. ` +
  "Paths you pass to tools are relative to that workspace. Be concise: say what you did and what you found."

export const agents: ReadonlyArray<AgentSpec> = [
  {
    name: "default",
    description: "Reads and changes the workspace, runs commands, hands sub-tasks to sub-agents",
    tools: "all",
    instructions: "Use the tools to inspect and change the workspace. Hand self-contained sub-tasks to the task tool."
  },
  {
    name: "general",
    description: "A sub-agent: the default agent without the task tool (it cannot start further sub-agents)",
    tools: "all",
    exclude: ["task"],
    instructions: "You are a sub-agent: do the task you were given and reply with the answer only."
  },
  {
    name: "explore",
    description: "Reads the workspace without changing it",
    tools: ["read", "list", "glob", "grep"],
    instructions: "Only read: find files, read them, search them, and report what you found."
  }
]

export const agentNames = agents.map((a) => a.name)

export const findAgent = (name: string): AgentSpec | undefined => agents.find((a) => a.name === name)

export const instructionsFor = (agent: AgentSpec, workspace: string) => `${base(workspace)}\n\n${agent.instructions}`

/** The subset of a turn's tools the agent may use. */
export const toolsForAgent = (agent: AgentSpec, tools: ToolSet): ToolSet =>
  Object.fromEntries(
    Object.entries(tools).filter(([name]) => (agent.tools === "all" || agent.tools.includes(name)) && !(agent.exclude ?? []).includes(name))
  )
