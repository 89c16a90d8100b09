import type { TaskId } from "../domain/Ids.js"
import type { InboxItem } from "../domain/Inbox.js"
import type { SessionInfo } from "../domain/Session.js"
import type { Task, WorkerInfo } from "../domain/Task.js"

/**
 * What `kiris top` shows, as plain data, and the pure reducer that folds hub snapshots, events and
 * key presses into it. The ink components only draw a `TopState`; the feed only dispatches actions.
 */

export type Connection = "connecting" | "live" | "reconnecting"
export type View = "tasks" | "detail" | "sessions" | "inbox"
export type Focus = "tasks" | "workers"

/** An action waiting for its y/n confirmation. */
export type PendingAction =
  | { readonly _tag: "cancel" | "retry" | "approve" | "reject"; readonly task: Task }
  | { readonly _tag: "drain"; readonly worker: WorkerInfo }
  | { readonly _tag: "answer"; readonly item: InboxRow; readonly answer: "approve" | "reject" }

/** What the inbox view shows of an item waiting for someone (a permission request, a human task). */
export type InboxRow = Pick<InboxItem, "id" | "kind" | "projectId" | "title" | "createdAt">

/** What the sessions panel shows of a session. */
export type SessionRow = Pick<SessionInfo, "id" | "projectId" | "title" | "agent" | "model" | "status" | "updatedAt" | "parentId">

export interface ProjectRef {
  readonly id: string
  readonly name: string
}

export interface TopState {
  readonly hub: string
  readonly now: number
  readonly connection: Connection
  /** The last outcome or hub error, shown in the status bar. */
  readonly message: { readonly text: string; readonly error: boolean } | null
  /** Hub-wide counts by status (and `workers`), from `task.stats`. */
  readonly counts: Readonly<Record<string, number>> | null
  /** Tasks known from `task.list` and `TasksChanged` events, by id. */
  readonly tasks: ReadonlyMap<TaskId, Task>
  readonly workers: ReadonlyArray<WorkerInfo>
  readonly projects: ReadonlyArray<ProjectRef>
  readonly sessions: ReadonlyArray<SessionRow>
  readonly inbox: ReadonlyArray<InboxRow>
  /** Tasks done within the last minute (id → finishedAt), for the throughput sparkline. */
  readonly completions: ReadonlyMap<TaskId, number>
  /** The streamed output of running tasks (`TaskProgress`), trimmed to its tail. */
  readonly output: ReadonlyMap<TaskId, string>
  readonly view: View
  readonly focus: Focus
  /** The selected task (the first visible one when unset or filtered out). */
  readonly selectedId: TaskId | null
  readonly workerSelected: number
  readonly inboxSelected: number
  readonly detailId: TaskId | null
  readonly statusFilter: string | null
  readonly kindFilter: string | null
  readonly textFilter: string
  /** Typing a filter after `/`. */
  readonly typing: boolean
  readonly confirm: PendingAction | null
  readonly help: boolean
}

export type TopAction =
  | { readonly _tag: "Connection"; readonly connection: Connection; readonly error?: string }
  | { readonly _tag: "Message"; readonly text: string; readonly error: boolean }
  | {
      readonly _tag: "Snapshot"
      readonly now: number
      readonly counts?: Readonly<Record<string, number>>
      readonly workers?: ReadonlyArray<WorkerInfo>
      readonly tasks?: ReadonlyArray<Task>
      readonly projects?: ReadonlyArray<ProjectRef>
      readonly sessions?: ReadonlyArray<SessionRow>
      readonly inbox?: ReadonlyArray<InboxRow>
    }
  | { readonly _tag: "TasksChanged"; readonly now: number; readonly tasks: ReadonlyArray<Task> }
  | { readonly _tag: "TaskProgress"; readonly taskId: TaskId; readonly parts: ReadonlyArray<unknown> }
  | { readonly _tag: "SessionChanged"; readonly session: SessionRow }
  | { readonly _tag: "SessionStatus"; readonly sessionId: string; readonly status: SessionInfo["status"] }
  | { readonly _tag: "SessionRemoved"; readonly sessionId: string }
  | { readonly _tag: "InboxAdded"; readonly item: InboxRow }
  | { readonly _tag: "InboxResolved"; readonly id: string }
  | { readonly _tag: "Tick"; readonly now: number }

export const WINDOW_MS = 60_000
/** How many tasks the dashboard keeps (newest first); older ones drop out. */
export const MAX_TASKS = 1000
const OUTPUT_TAIL = 4000

export const initialState = (hub: string, now: number): TopState => ({
  hub,
  now,
  connection: "connecting",
  message: null,
  counts: null,
  tasks: new Map(),
  workers: [],
  projects: [],
  sessions: [],
  inbox: [],
  completions: new Map(),
  output: new Map(),
  view: "tasks",
  focus: "tasks",
  selectedId: null,
  workerSelected: 0,
  inboxSelected: 0,
  detailId: null,
  statusFilter: null,
  kindFilter: null,
  textFilter: "",
  typing: false,
  confirm: null,
  help: false
})

const pruneCompletions = (completions: ReadonlyMap<TaskId, number>, now: number) => {
  const kept = new Map<TaskId, number>()
  for (const [id, at] of completions) if (at > now - WINDOW_MS) kept.set(id, at)
  return kept
}

const recordCompletions = (completions: ReadonlyMap<TaskId, number>, tasks: ReadonlyArray<Task>, now: number) => {
  const next = pruneCompletions(completions, now)
  for (const t of tasks) {
    if (t.status === "done" && t.finishedAt !== null && t.finishedAt > now - WINDOW_MS) next.set(t.id, t.finishedAt)
  }
  return next
}

/** The newest `MAX_TASKS` tasks, by creation (the selected detail task is kept). */
const bounded = (tasks: Map<TaskId, Task>, keep: TaskId | null): Map<TaskId, Task> => {
  if (tasks.size <= MAX_TASKS) return tasks
  const sorted = [...tasks.values()].sort((a, b) => b.seq - a.seq).slice(0, MAX_TASKS)
  const next = new Map(sorted.map((t) => [t.id, t]))
  const kept = keep === null ? undefined : tasks.get(keep)
  if (kept !== undefined) next.set(kept.id, kept)
  return next
}

const mergeTasks = (state: TopState, tasks: ReadonlyArray<Task>): Map<TaskId, Task> => {
  const next = new Map(state.tasks)
  for (const t of tasks) {
    const known = next.get(t.id)
    if (known === undefined || known.updatedAt <= t.updatedAt) next.set(t.id, t)
  }
  return bounded(next, state.detailId)
}

/** Readable text of streamed agent parts: text deltas as they are, tool calls as one line each. */
export const partsText = (parts: ReadonlyArray<unknown>): string =>
  parts
    .map((p) => {
      if (typeof p !== "object" || p === null) return ""
      const part = p as { type?: unknown; text?: unknown; delta?: unknown; toolName?: unknown; error?: unknown }
      if (part.type === "text-delta" || part.type === "reasoning-delta")
        return typeof part.text === "string" ? part.text : typeof part.delta === "string" ? part.delta : ""
      if (part.type === "tool-call" && typeof part.toolName === "string") return `\n[tool ${part.toolName}]\n`
      if (part.type === "error" && typeof part.error === "string") return `\n[error ${part.error}]\n`
      return ""
    })
    .join("")

const withSessions = (sessions: ReadonlyArray<SessionRow>, session: SessionRow) => {
  const rest = sessions.filter((s) => s.id !== session.id)
  return [session, ...rest].sort((a, b) => b.updatedAt - a.updatedAt)
}

export const reduce = (state: TopState, action: TopAction): TopState => {
  switch (action._tag) {
    case "Connection":
      return {
        ...state,
        connection: action.connection,
        message:
          action.error === undefined
            ? action.connection === "live" && state.connection !== "live"
              ? null
              : state.message
            : { text: action.error, error: true }
      }
    case "Message":
      return { ...state, message: { text: action.text, error: action.error } }
    case "Snapshot": {
      const tasks = action.tasks === undefined ? state.tasks : mergeTasks(state, action.tasks)
      return {
        ...state,
        now: action.now,
        counts: action.counts ?? state.counts,
        workers: action.workers ?? state.workers,
        tasks,
        projects: action.projects ?? state.projects,
        inbox: action.inbox ?? state.inbox,
        sessions: action.sessions === undefined ? state.sessions : [...action.sessions].sort((a, b) => b.updatedAt - a.updatedAt),
        completions: action.tasks === undefined ? state.completions : recordCompletions(state.completions, action.tasks, action.now)
      }
    }
    case "TasksChanged": {
      const ended = action.tasks.filter((t) => t.status !== "leased").map((t) => t.id)
      const output = ended.some((id) => state.output.has(id))
        ? new Map([...state.output].filter(([id]) => !ended.includes(id) || id === state.detailId))
        : state.output
      return {
        ...state,
        now: action.now,
        tasks: mergeTasks(state, action.tasks),
        completions: recordCompletions(state.completions, action.tasks, action.now),
        output
      }
    }
    case "TaskProgress": {
      const text = partsText(action.parts)
      if (text === "") return state
      const output = new Map(state.output)
      output.set(action.taskId, ((state.output.get(action.taskId) ?? "") + text).slice(-OUTPUT_TAIL))
      return { ...state, output }
    }
    case "SessionChanged":
      return { ...state, sessions: withSessions(state.sessions, action.session) }
    case "SessionStatus":
      return { ...state, sessions: state.sessions.map((s) => (s.id === action.sessionId ? { ...s, status: action.status } : s)) }
    case "SessionRemoved":
      return { ...state, sessions: state.sessions.filter((s) => s.id !== action.sessionId) }
    case "InboxAdded":
      return { ...state, inbox: [...state.inbox.filter((i) => i.id !== action.item.id), action.item] }
    case "InboxResolved":
      return { ...state, inbox: state.inbox.filter((i) => i.id !== action.id) }
    case "Tick":
      return { ...state, now: action.now, completions: pruneCompletions(state.completions, action.now) }
  }
}
