import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // tests spawn bin/kiris.js, which runs the compiled dist/: build it from the current source first;
    // TempRoot gives the run one temp directory, removed when the run ends (test/support/TempDir.ts)
    globalSetup: ["./scripts/build-for-tests.mjs", "./test/support/TempRoot.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // most tests wait on hubs, sockets and child processes rather than the CPU: four forks keep two
    // cores busy (vitest's default on two cores is one fork)
    poolOptions: { forks: { maxForks: 4, minForks: 1 } }
  }
})
