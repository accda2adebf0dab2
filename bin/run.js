#!/usr/bin/env node
// Compile cache first: it halves the cost of loading oclif and a command on every start.
import module from 'node:module'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

/**
 * Where V8's compiled code is kept between runs: the user's cache folder ($XDG_CACHE_HOME, else
 * ~/.cache; ~/Library/Caches on macOS, %LOCALAPPDATA% on Windows), so that it survives reboots and
 * is not shared with other users the way Node's default under the temporary folder is.
 * NODE_COMPILE_CACHE, when set, has already enabled Node's own (undefined leaves it to Node), and
 * NODE_DISABLE_COMPILE_CACHE=1 turns it off.
 */
function compileCacheDir() {
  const env = process.env
  if (env.NODE_COMPILE_CACHE) return undefined
  const xdg = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : undefined
  const base =
    xdg ??
    (process.platform === 'win32' && env.LOCALAPPDATA
      ? env.LOCALAPPDATA
      : path.join(os.homedir(), process.platform === 'darwin' ? 'Library/Caches' : '.cache'))
  return path.join(base, 'retailops', 'compile')
}

// A folder that cannot be created or written (read-only HOME in CI) only costs the speed-up:
// Node reports it in the returned status and never throws for it; os.homedir() may throw.
try {
  module.enableCompileCache?.(compileCacheDir())
} catch {
  // No home folder: run without the cache.
}
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
if (!answered && argv.length > 0) {
  // A command of this package with nothing else for oclif to do starts without oclif's plugin discovery.
  let direct
  try {
    direct = (await import('../dist/src/ui/fast-path.js')).directCommand(argv, root)
  } catch {
    // No build or an unexpected manifest: oclif starts instead.
  }
  if (direct) {
    const {runDirect} = await import(direct.runner.href)
    await runDirect(direct)
    answered = true
  }
}
if (!answered) {
  const {execute} = await import('@oclif/core/execute')
  // No user or dev plugins: retailops installs none (no @oclif/plugin-plugins), so looking for
  // them is only a read of ~/.local/share/retailops/package.json on every start (and a warning
  // when HOME is not a folder).
  const loadOptions = {root: fileURLToPath(root), userPlugins: false, devPlugins: false}
  await execute({dir: import.meta.url, loadOptions})
}
