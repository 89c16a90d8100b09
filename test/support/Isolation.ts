import { it } from "@effect/vitest"
import { afterAll } from "vitest"

/**
 * Setup file run before every test file. The suite's files share their worker processes' module
 * caches (`isolate: false` in vitest.config.ts), so a file must leave shared state as it found it.
 * @effect/vitest's `layer(…)` assigns its own `effect`/`scoped`/… methods onto vitest's shared `it`
 * (with `excludeTestServices: true`, testers without TestClock): the methods as first loaded are
 * put back when each file ends.
 */

type Methods = Pick<typeof it, "effect" | "scoped" | "live" | "scopedLive" | "flakyTest" | "layer" | "prop">

const key = Symbol.for("kiris/test/pristine-it")
const store = globalThis as { [key]?: Methods }
const pristine: Methods = (store[key] ??= {
  effect: it.effect,
  scoped: it.scoped,
  live: it.live,
  scopedLive: it.scopedLive,
  flakyTest: it.flakyTest,
  layer: it.layer,
  prop: it.prop
})

afterAll(() => {
  Object.assign(it, pristine)
})
