import { EventRpcs } from "./EventRpcs.js"
import { FileRpcs } from "./FileRpcs.js"
import { InboxRpcs } from "./InboxRpcs.js"
import { PermissionRpcs } from "./PermissionRpcs.js"
import { PresenceRpcs } from "./PresenceRpcs.js"
import { ProjectRpcs } from "./ProjectRpcs.js"
import { SessionRevertRpcs, SessionRpcs } from "./SessionRpcs.js"
import { TaskRpcs } from "./TaskRpcs.js"
import { UserRpcs } from "./UserRpcs.js"
import { WorkerRpcs } from "./WorkerRpcs.js"

/** Every RPC a client or worker can call, served identically over WebSocket and TCP NDJSON. */
export class ClientRpcs extends ProjectRpcs.merge(
  UserRpcs,
  EventRpcs,
  PermissionRpcs,
  SessionRpcs,
  SessionRevertRpcs,
  FileRpcs,
  TaskRpcs,
  WorkerRpcs,
  PresenceRpcs,
  InboxRpcs
) {}
