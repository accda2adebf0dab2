import {defineConfig} from 'vitest/config'

// Unit tests cover pure logic and run anywhere; integration tests talk to the sandbox
// (scripts/sandbox.sh up) and read its endpoints from the environment that `sandbox.sh env` prints.
export default defineConfig({
  test: {
    projects: [
      {test: {name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 20_000}},
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // Checks once that the sandbox is up and loaded; fails the run with the fix if not.
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // One cluster, one Docker Engine: files run one after another in one process, so
          // they neither fight over the 2 cores nor see each other's objects mid-test.
          pool: 'forks',
          poolOptions: {forks: {singleFork: true}},
        },
      },
    ],
  },
})
