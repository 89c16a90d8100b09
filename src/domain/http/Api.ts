import { HttpApi, OpenApi } from "@effect/platform"
import { AuthApi } from "./AuthApi.js"
import { EventsApi } from "./EventsApi.js"
import { FilesApi, filesOpenApiPath } from "./FilesApi.js"
import { InboxApi } from "./InboxApi.js"
import { KeysApi } from "./KeysApi.js"
import { ProjectsApi } from "./ProjectsApi.js"
import { TasksApi } from "./TasksApi.js"
import { UsersApi } from "./UsersApi.js"

export const ApiVersion = "0.1.0"

/**
 * The hub's REST API (`/api/...`), described at `/openapi.json` and `/docs`. Each area declares one
 * HttpApiGroup in its own file and adds it here; its handlers go in src/transport/http/ApiHandlers.ts.
 */
export class Api extends HttpApi.make("kiris")
  .add(AuthApi)
  .add(KeysApi)
  .add(UsersApi)
  .add(ProjectsApi)
  .add(TasksApi)
  .add(FilesApi)
  .add(EventsApi)
  .add(InboxApi)
  .annotateContext(
    OpenApi.annotations({
      title: "Kiris hub API",
      version: ApiVersion,
      description:
        "Administration of a Kiris hub: login, API keys, users, projects and their members, the swarm task queue, workspace file upload and download, and a read-only Server-Sent Events feed of a project's events. " +
        "Authenticate with `Authorization: Bearer <token>` (a login JWT or a kiris_ API key).",
      transform: (spec) => ({
        ...spec,
        paths: Object.fromEntries(Object.entries(spec["paths"] as Record<string, unknown>).map(([path, item]) => [filesOpenApiPath(path), item]))
      })
    })
  ) {}
