import type { TaskId, WorkerId } from "../domain/Ids.js"
import type { TaskKind } from "../domain/Task.js"
import { chunkPayloads } from "../cluster/Cluster.js"
import type { BatchEffects } from "./sql/BatchEffects.js"

/**
 * What one hub's committed queue batch tells the other hubs of its database (channel `kiris_queue`):
 * kinds that have work available (`w`), cancels for leasing workers (`c`: worker and task id), and
 * ids of tasks that ended (`e`); plus `r`, a hub's probe of its own LISTEN. A payload is
 * `<hubId> <type> <item>,<item>,…`, items URI-encoded (so no item holds a space or a comma); only
 * ids and kinds travel, receivers read rows themselves.
 */
export type QueueSignal =
  | { readonly _tag: "work"; readonly kinds: ReadonlyArray<TaskKind> }
  | { readonly _tag: "cancel"; readonly cancels: ReadonlyArray<{ readonly workerId: WorkerId; readonly taskId: TaskId }> }
  | { readonly _tag: "ended"; readonly ids: ReadonlyArray<TaskId> }
  | { readonly _tag: "ready"; readonly nonce: string }

const enc = encodeURIComponent

/** The payloads announcing `fx` to the other hubs (none when it changed nothing they act on). */
export const batchSignals = (hubId: string, fx: BatchEffects): Array<string> => [
  ...chunkPayloads(`${hubId} w `, [...fx.wakeKinds].map(enc)),
  ...chunkPayloads(
    `${hubId} c `,
    fx.cancels.map((c) => `${enc(c.workerId)}:${enc(c.taskId)}`)
  ),
  ...chunkPayloads(`${hubId} e `, fx.ended.map(enc))
]

export const readySignal = (hubId: string, nonce: string): string => `${hubId} r ${enc(nonce)}`

/** The sending hub and the signal of a payload; undefined for one this hub does not understand. */
export const parseSignal = (payload: string): { readonly hubId: string; readonly signal: QueueSignal } | undefined => {
  const [hubId, type, body, extra] = payload.split(" ")
  if (hubId === undefined || type === undefined || body === undefined || extra !== undefined) return undefined
  try {
    const items = body === "" ? [] : body.split(",").map(decodeURIComponent)
    switch (type) {
      case "w":
        return { hubId, signal: { _tag: "work", kinds: items as Array<TaskKind> } }
      case "e":
        return { hubId, signal: { _tag: "ended", ids: items as Array<TaskId> } }
      case "r":
        return { hubId, signal: { _tag: "ready", nonce: items.join(",") } }
      case "c": {
        const cancels: Array<{ workerId: WorkerId; taskId: TaskId }> = []
        for (const pair of body.split(",")) {
          const [w, t] = pair.split(":")
          if (w === undefined || t === undefined) return undefined
          cancels.push({ workerId: decodeURIComponent(w) as WorkerId, taskId: decodeURIComponent(t) as TaskId })
        }
        return { hubId, signal: { _tag: "cancel", cancels } }
      }
      default:
        return undefined
    }
  } catch {
    return undefined
  }
}
