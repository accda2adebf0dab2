#!/usr/bin/env node
// Compile cache first: it halves the cost of loading oclif and a command on every start.
import module from 'node:module'

module.enableCompileCache?.()
// `retailops … | head`: a reader that stops early is not an error of retailops (as for any Unix tool).
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0)
  throw error
})
const root = new URL('../', import.meta.url)
const argv = process.argv.slice(2)
let answered = false
if (argv.length <= 1 && (argv.length === 0 || /^(-v|--version|-h|--help)$/.test(argv[0]))) {
  try {
    const {fastPath} = await import('../dist/src/ui/fast-path.js')
    const text = fastPath(argv, root)
    if (text !== undefined) {
      process.stdout.write(text)
      answered = true
    }
  } catch {
    // No build or an unexpected manifest: oclif answers instead.
  }
}
if (!answered) {
  const {execute} = await import('@oclif/core')
  await execute({dir: import.meta.url})
}
