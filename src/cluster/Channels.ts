/** The channels hubs talk on; one place so that no two features share a channel by accident. */
export type ClusterChannel = "kiris_queue" | "kiris_events" | "kiris_auth" | "kiris_sessions"
export const CHANNELS: ReadonlyArray<ClusterChannel> = ["kiris_queue", "kiris_events", "kiris_auth", "kiris_sessions"]
