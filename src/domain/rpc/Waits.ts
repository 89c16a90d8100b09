import { Context } from "effect"

/**
 * Marks a unary RPC whose call may wait a long time on other events (`task.wait`). A connection
 * runs only a few unary calls at once; calls marked so do not take one of those places, so that a
 * client waiting on tasks can still make other calls on the same connection.
 */
export class Waits extends Context.Tag("kiris/Waits")<Waits, true>() {}
