#!/usr/bin/env node
// Compile cache first: it halves the cost of loading oclif and a command on every start.
import module from 'node:module'
module.enableCompileCache?.()
const {execute} = await import('@oclif/core')
await execute({dir: import.meta.url})
