import { Effect } from "effect"
import type { TestHub } from "./Hub.js"

/** A REST call against a test hub: status, content type, raw text and the parsed JSON body. */
export interface Reply {
  readonly status: number
  readonly contentType: string
  readonly text: string
  // Parsed JSON body (undefined when the body is not JSON).
  readonly json: any
}

export const request = (
  hub: TestHub,
  method: string,
  route: string,
  options: { readonly token?: string; readonly authorization?: string; readonly body?: unknown } = {}
) =>
  Effect.promise(async (): Promise<Reply> => {
    const headers: Record<string, string> = {}
    if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`
    if (options.authorization !== undefined) headers["authorization"] = options.authorization
    if (options.body !== undefined) headers["content-type"] = "application/json"
    const res = await fetch(hub.httpUrl + route, {
      method,
      headers,
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {})
    })
    const text = await res.text()
    let json: unknown = undefined
    try {
      json = text === "" ? undefined : JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: res.status, contentType: res.headers.get("content-type") ?? "", text, json }
  })

/** Every REST operation of the swarm task group, as `method path` in OpenAPI form. */
export const TASK_OPERATIONS = [
  "post /api/tasks",
  "get /api/tasks",
  "post /api/tasks/batch",
  "get /api/tasks/stats",
  "post /api/tasks/wait",
  "post /api/tasks/map",
  "get /api/tasks/{taskId}",
  "post /api/tasks/{taskId}/cancel",
  "post /api/tasks/{taskId}/retry",
  "post /api/tasks/{taskId}/approve",
  "get /api/workers"
]
