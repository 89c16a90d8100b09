import { defineConfig } from "vitest/config"
import { LongestFirst } from "./test/support/Sequencer.js"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // tests spawn bin/kiris.js, which runs the bundled dist/: build it from the current source first;
    // TempRoot gives the run one temp directory, removed when the run ends (test/support/TempDir.ts);
    // PgRun tags the run's PostgreSQL test databases and drops them when it ends (test/support/Pg.ts)
    globalSetup: ["./scripts/build-for-tests.mjs", "./test/support/TempRoot.ts", "./test/support/PgRun.ts"],
    // puts back, after each file, what a file may change in the process it shares with others
    setupFiles: ["./test/support/Isolation.ts"],
    // the longest files first (from the last run here, else test/durations.json): see the class
    sequence: { sequencer: LongestFirst },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    poolOptions: {
      forks: {
        // most tests wait on hubs, sockets and child processes rather than the CPU: four forks keep
        // two cores busy (vitest's default on two cores is one fork)
        maxForks: 4,
        // as many as maxForks, always: with fewer, the pool retires idle forks, and a fork retired
        // while it is handed its next file takes that file's tests down with it
        minForks: 4,
        // a fork runs file after file with the modules it already loaded (Effect, the AI SDK, src/):
        // loading them again for each of the ~120 files took half of the suite's CPU
        isolate: false
      }
    }
  }
})
