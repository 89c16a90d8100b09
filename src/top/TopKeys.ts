import type { TaskId } from "../domain/Ids.js"
import { terminalStatuses } from "../domain/Task.js"
import type { PendingAction, TopState } from "./TopState.js"
import { kinds, selectedIndex, selectedTask, selectedWorker, statuses, statusLabel, visibleTasks } from "./TopView.js"

/** What a key press does to a `TopState` (pure): navigation, filters, confirmations, quitting. */

/** The keys ink reports that the dashboard uses (a subset of ink's `Key`). */
export interface KeyInfo {
  readonly upArrow?: boolean
  readonly downArrow?: boolean
  readonly leftArrow?: boolean
  readonly rightArrow?: boolean
  readonly pageUp?: boolean
  readonly pageDown?: boolean
  readonly return?: boolean
  readonly escape?: boolean
  readonly tab?: boolean
  readonly backspace?: boolean
  readonly delete?: boolean
  readonly ctrl?: boolean
  readonly meta?: boolean
}

export interface KeyOutcome {
  readonly state: TopState
  /** A confirmed action to run against the hub. */
  readonly run?: PendingAction
  /** A task whose detail was opened (the feed refreshes it). */
  readonly opened?: TaskId
  readonly quit?: boolean
}

export const HELP: ReadonlyArray<readonly [string, string]> = [
  ["↑ ↓", "select a task (or a worker, after Tab)"],
  ["PgUp PgDn ← →", "page through the task list"],
  ["Enter / Esc", "open a task's detail / go back"],
  ["Tab", "switch between the task list and the workers"],
  ["/", "filter by text (Enter keeps it, Esc clears it)"],
  ["s / k / 0", "cycle status filter / kind filter / clear filters"],
  ["1 / 2 / 3", "tasks / sessions / inbox"],
  ["c r", "cancel / retry the selected task"],
  ["a x", "approve / reject the selected human task or inbox item"],
  ["d", "drain the selected worker (server admins)"],
  ["?  q", "this help / quit"]
]

const cycle = (values: ReadonlyArray<string>, current: string | null): string | null => {
  const i = current === null ? -1 : values.indexOf(current)
  return i + 1 >= values.length ? null : (values[i + 1] ?? null)
}

const clamp = (n: number, size: number) => Math.max(0, Math.min(n, size - 1))

const message = (state: TopState, text: string): KeyOutcome => ({ state: { ...state, message: { text, error: true } } })

const ask = (state: TopState, action: PendingAction): KeyOutcome => ({ state: { ...state, confirm: action } })

/** A task action, if it applies to the selected task. */
const taskAction = (state: TopState, tag: "cancel" | "retry" | "approve" | "reject"): KeyOutcome => {
  if (state.view === "sessions" || state.view === "inbox") return message(state, "tasks are acted on from the task list (1)")
  const task = selectedTask(state)
  if (task === undefined) return message(state, "no task selected")
  const ended = terminalStatuses.includes(task.status)
  if (tag === "cancel" && ended) return message(state, `#${task.seq} has already ended (${task.status})`)
  if (tag === "retry" && !["failed", "dead", "cancelled"].includes(task.status))
    return message(state, `only failed, dead or cancelled tasks are retried; #${task.seq} is ${task.status}`)
  if ((tag === "approve" || tag === "reject") && (task.kind !== "human" || ended))
    return message(state, `only open human tasks are approved or rejected; #${task.seq} is a ${task.status} ${task.kind} task`)
  return ask(state, { _tag: tag, task })
}

const move = (state: TopState, delta: number): TopState =>
  state.focus === "workers"
    ? { ...state, workerSelected: clamp(state.workerSelected + delta, state.workers.length) }
    : state.view === "inbox"
      ? { ...state, inboxSelected: clamp(state.inboxSelected + delta, state.inbox.length) }
      : moveTask(state, delta)

/** Approve or reject: the selected inbox item in the inbox view, else the selected human task. */
const answer = (state: TopState, choice: "approve" | "reject"): KeyOutcome => {
  if (state.view !== "inbox") return taskAction(state, choice)
  const item = state.inbox[Math.min(state.inboxSelected, state.inbox.length - 1)]
  return item === undefined ? message(state, "the inbox is empty") : ask(state, { _tag: "answer", item, answer: choice })
}

const moveTask = (state: TopState, delta: number): TopState => {
  const list = visibleTasks(state)
  const task = list[clamp(selectedIndex(state, list) + delta, list.length)]
  return task === undefined ? state : { ...state, selectedId: task.id }
}

const typingKey = (state: TopState, input: string, key: KeyInfo): KeyOutcome => {
  if (key.escape) return { state: { ...state, typing: false, textFilter: "" } }
  if (key.return) return { state: { ...state, typing: false } }
  if (key.backspace || key.delete) return { state: { ...state, textFilter: [...state.textFilter].slice(0, -1).join("") } }
  if (key.ctrl || key.meta || input === "" || /[\x00-\x1f]/.test(input)) return { state }
  return { state: { ...state, textFilter: (state.textFilter + input).slice(0, 60) } }
}

export const onKey = (state: TopState, input: string, key: KeyInfo, pageSize: number): KeyOutcome => {
  if (key.ctrl && input === "c") return { state, quit: true }
  if (state.typing) return typingKey(state, input, key)
  if (state.confirm !== null) {
    if (input === "y" || input === "Y") return { state: { ...state, confirm: null }, run: state.confirm }
    return { state: { ...state, confirm: null, message: { text: "nothing done", error: false } } }
  }
  if (input === "q") return { state, quit: true }
  if (state.help) return { state: { ...state, help: false } }
  if (input === "?") return { state: { ...state, help: true } }
  if (key.upArrow) return { state: move(state, -1) }
  if (key.downArrow) return { state: move(state, 1) }
  if (key.pageUp || key.leftArrow) return { state: move(state, -pageSize) }
  if (key.pageDown || key.rightArrow) return { state: move(state, pageSize) }
  if (key.tab) return { state: { ...state, focus: state.focus === "tasks" ? "workers" : "tasks" } }
  if (key.escape) return { state: { ...state, view: state.view === "detail" ? "tasks" : state.view, detailId: null, focus: "tasks" } }
  if (key.return && state.focus === "tasks" && state.view === "tasks") {
    const task = selectedTask(state)
    return task === undefined ? { state } : { state: { ...state, view: "detail", detailId: task.id }, opened: task.id }
  }
  switch (input) {
    case "/":
      return { state: { ...state, typing: true, view: "tasks", detailId: null, focus: "tasks" } }
    case "s":
      return { state: { ...state, statusFilter: cycle(statuses, state.statusFilter) } }
    case "k":
      return { state: { ...state, kindFilter: cycle(kinds, state.kindFilter) } }
    case "0":
      return { state: { ...state, statusFilter: null, kindFilter: null, textFilter: "" } }
    case "1":
      return { state: { ...state, view: "tasks", detailId: null } }
    case "2":
      return { state: { ...state, view: "sessions", detailId: null } }
    case "3":
      return { state: { ...state, view: "inbox", detailId: null } }
    case "c":
      return taskAction(state, "cancel")
    case "r":
      return taskAction(state, "retry")
    case "a":
      return answer(state, "approve")
    case "x":
      return answer(state, "reject")
    case "d": {
      const worker = selectedWorker(state)
      if (worker === undefined || !worker.connected) return message(state, "no connected worker selected (Tab selects workers)")
      return ask(state, { _tag: "drain", worker })
    }
  }
  return { state }
}

/** The question the status bar asks before an action runs. */
export const confirmText = (action: PendingAction): string => {
  if (action._tag === "drain") return `Drain worker ${action.worker.name} (${action.worker.id})? It finishes its tasks, then exits. y/n`
  if (action._tag === "answer")
    return `${action.answer === "approve" ? "Approve" : "Reject"} ${action.item.kind === "permission" ? "permission request" : "human task"} ${action.item.id}? y/n`
  return `${action._tag[0]!.toUpperCase()}${action._tag.slice(1)} task #${action.task.seq} (${action.task.kind}, ${statusLabel(action.task.status)})? y/n`
}
