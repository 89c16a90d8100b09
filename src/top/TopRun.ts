import { Clock, Effect } from "effect"
import { render } from "ink"
import React from "react"
import { parseHub } from "../client/HubClient.js"
import { TopApp } from "./TopApp.js"
import { startFeed } from "./TopFeed.js"
import { initialState } from "./TopState.js"
import { makeStore } from "./TopStore.js"

/** Runs the dashboard on this terminal until the user quits (loaded only by `kiris top`). */

const ALT_SCREEN_ON = "\x1b[?1049h"
const ALT_SCREEN_OFF = "\x1b[?1049l"

export const runTop = (options: { readonly hub: string; readonly token: string }) =>
  Effect.gen(function* () {
    const store = makeStore(initialState(options.hub, yield* Clock.currentTimeMillis))
    yield* Effect.addFinalizer(() => Effect.sync(() => store.close()))
    const feed = yield* startFeed(store, { target: parseHub(options.hub), hub: options.hub, token: options.token })
    // the alternate screen keeps the user's scrollback as it was
    const instance = yield* Effect.acquireRelease(
      Effect.sync(() => {
        process.stdout.write(ALT_SCREEN_ON)
        return render(React.createElement(TopApp, { store, feed }), { maxFps: 10, incrementalRendering: true, exitOnCtrlC: true })
      }),
      (app) =>
        Effect.sync(() => {
          app.unmount()
          process.stdout.write(ALT_SCREEN_OFF)
        })
    )
    yield* Effect.promise(() => instance.waitUntilExit())
  }).pipe(Effect.scoped)
