#!/usr/bin/env -S node --import tsx --disable-warning=ExperimentalWarning
// Runs the TypeScript sources directly (oclif maps dist/commands back to commands/).
const {execute} = await import('@oclif/core')
await execute({development: true, dir: import.meta.url})
