// Moved to test/support/sandbox.ts. Kept as a re-export only for test files written in parallel
// branches before the move; import from test/support/ (the integrator deletes this file).
export * from '../../support/sandbox.js'
