import { EventRpcs } from "./EventRpcs.js"
import { ProjectRpcs } from "./ProjectRpcs.js"
import { UserRpcs } from "./UserRpcs.js"

/** Every RPC a client or worker can call, served identically over WebSocket and TCP NDJSON. */
export class ClientRpcs extends ProjectRpcs.merge(UserRpcs, EventRpcs) {}
