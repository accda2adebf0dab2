// vitest globalSetup of the integration project (vitest.config.ts): the sandbox is checked once,
// before any test file runs. A sandbox that is down or half-loaded fails the whole run with the
// fix; no integration test skips because of it.
import {SANDBOX_FIX, sandboxProblems} from './sandbox.js'

export default async function checkSandbox(): Promise<void> {
  const problems = await sandboxProblems()
  if (problems.length > 0) {
    throw new Error(
      `The sandbox is not ready for the integration tests:\n${problems.map((p) => `  - ${p}`).join('\n')}\n${SANDBOX_FIX}`,
    )
  }
}
