import {existsSync, readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

/**
 * `retailops --version` and `retailops --help` answer from package.json and the command
 * manifest without loading oclif: they run in scripts and shell prompts many times a day, and
 * oclif's own start-up would make them several times slower than Node itself.
 */
interface ManifestCommand {
  id: string
  summary?: string
  description?: string
  hidden?: boolean
}

export function fastPath(argv: string[], root: URL): string | undefined {
  if (argv.length > 1) return undefined
  const arg = argv[0]
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
    name: string
    version: string
    description: string
    oclif: {topics?: Record<string, {description: string}>}
  }
  const version = `${pkg.name}/${pkg.version} ${process.platform}-${process.arch} node-${process.version}`
  if (arg === '--version' || arg === '-v') return `${version}\n`
  if (arg !== undefined && arg !== '--help' && arg !== '-h') return undefined

  let manifest: {version: string; commands: Record<string, ManifestCommand>}
  try {
    manifest = JSON.parse(readFileSync(new URL('oclif.manifest.json', root), 'utf8')) as typeof manifest
  } catch {
    return undefined
  }
  if (manifest.version !== pkg.version) return undefined
  const width = Math.max(40, Math.min(process.stdout.columns || 80, 120))
  const commands = Object.values(manifest.commands).filter((c) => !c.hidden)
  const topics = new Map<string, string>()
  const rootCommands: [string, string][] = [['help', `Display help for ${pkg.name}.`]]
  for (const c of commands) {
    const [first, ...rest] = c.id.split(':')
    if (rest.length > 0) topics.set(first, pkg.oclif.topics?.[first]?.description ?? '')
    else rootCommands.push([c.id, firstLine(c.summary ?? c.description ?? '')])
  }
  const section = (title: string, rows: [string, string][]) => {
    const pad = Math.max(...rows.map(([name]) => name.length)) + 2
    const lines = rows
      .sort(([a], [b]) => a.localeCompare(b))
      .flatMap(([name, text]) =>
        wrap(text, width - pad - 2).map((line, i) => `  ${(i === 0 ? name : '').padEnd(pad)}${line}`.trimEnd()),
      )
    return `${title}\n${lines.join('\n')}\n`
  }
  return (
    [
      `${pkg.description}\n`,
      `VERSION\n  ${version}\n`,
      `USAGE\n  $ ${pkg.name} [COMMAND]\n`,
      section('TOPICS', [...topics.entries()]),
      section('COMMANDS', rootCommands),
    ].join('\n') + '\n'
  )
}

function firstLine(text: string): string {
  return text.split('\n')[0]
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else line = line ? `${line} ${word}` : word
  }
  if (line) lines.push(line)
  return lines.length > 0 ? lines : ['']
}

/** A command `bin/run.js` can start without oclif's plugin discovery: its id, its arguments and its module. */
export interface DirectCommand {
  id: string
  argv: string[]
  module: URL
  /** commands/_base/direct.js, bundled with the command when the build made dist/direct/; for an everyday command, the command's own file (module). */
  runner: URL
  /** The package's folder (oclif's config.root). */
  root: string
  bin: string
  name: string
  version: string
  dirname: string
  /** package.json oclif.exitCodes: the exit codes of oclif's flag and argument errors. */
  exitCodes: Record<string, number>
  commandIDs: string[]
  /** The manifest's entries, for oclif's own lookups (the deprecated-alias check). */
  commands: Record<string, ManifestEntry>
}

interface ManifestEntry extends ManifestCommand {
  strict?: boolean
  args?: Record<string, unknown>
  relativePath?: string[]
}

interface PackageJson {
  name: string
  version: string
  oclif: {
    bin?: string
    dirname?: string
    hooks?: unknown
    exitCodes?: Record<string, number>
    topicSeparator?: string
    additionalHelpFlags?: string[]
    additionalVersionFlags?: string[]
  }
}

/**
 * The command a run names, when it can start without oclif's Config.load (36 ms of plugin
 * discovery, package.json and manifest reading for three plugins, themes): a command of this
 * package named in the manifest, with no help or version flag, no hooks to run, no oclif debug
 * output asked for and no user theme. Anything else (help, plugins' commands, typos) is oclif's.
 * RETAILOPS_DIRECT_START=0 turns it off, to compare with oclif's own start.
 */
export function directCommand(
  argv: string[],
  root: URL,
  env: NodeJS.ProcessEnv = process.env,
): DirectCommand | undefined {
  if (argv.length === 0 || env.RETAILOPS_DIRECT_START === '0' || env.DEBUG || env.RETAILOPS_DEBUG) return undefined
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as PackageJson
  const oclif = pkg.oclif
  if (oclif.hooks !== undefined || oclif.topicSeparator !== ' ') return undefined
  if (['--version', ...(oclif.additionalVersionFlags ?? [])].includes(argv[0])) return undefined
  const helpFlags = ['--help', ...(oclif.additionalHelpFlags ?? [])]
  for (const arg of argv) {
    if (arg === '--') break
    if (helpFlags.includes(arg)) return undefined
  }
  let manifest: {version: string; commands: Record<string, ManifestEntry>}
  try {
    manifest = JSON.parse(readFileSync(new URL('oclif.manifest.json', root), 'utf8')) as typeof manifest
  } catch {
    return undefined
  }
  if (manifest.version !== pkg.version) return undefined
  const bin = oclif.bin ?? pkg.name
  const dirname = oclif.dirname ?? pkg.name
  if (userThemeFileExists(bin, dirname, env)) return undefined
  const id = spacedCommandId(argv, manifest.commands)
  const command = id === undefined ? undefined : manifest.commands[id]
  if (id === undefined || !command?.relativePath) return undefined
  // The bundle scripts/bundle-direct.mjs builds (dist/direct/commands/…): one file and a few chunks
  // instead of hundreds of modules. Without it (a build that stopped early), oclif starts. An
  // everyday command has a file of its own there (dist/direct/solo/commands/…): the runner and the
  // command in one module.
  const [dist, ...rest] = command.relativePath
  const solo = new URL(`${dist}/direct/solo/${rest.join('/')}`, root)
  const runner = existsSync(solo) ? solo : new URL(`${dist}/direct/commands/_base/direct.js`, root)
  if (runner !== solo && !existsSync(runner)) return undefined
  return {
    id,
    argv: argv.slice(id.split(':').length),
    module: runner === solo ? solo : new URL(`${dist}/direct/${rest.join('/')}`, root),
    runner,
    root: fileURLToPath(root),
    bin,
    name: pkg.name,
    version: pkg.version,
    dirname,
    exitCodes: oclif.exitCodes ?? {},
    commandIDs: Object.keys(manifest.commands),
    commands: manifest.commands,
  }
}

/**
 * oclif's reading of a command id from words separated by spaces (help/util.js,
 * collateSpacedCmdIDFromArgs): words join the id while they name a command or topic, and stop at
 * a flag, at a word with `=`, or once the id so far is a command that takes arguments.
 */
export function spacedCommandId(
  argv: string[],
  commands: Record<string, {strict?: boolean; args?: Record<string, unknown>}>,
): string | undefined {
  const usable = new Set<string>()
  for (const id of Object.keys(commands)) {
    const parts = id.split(':')
    for (let i = 1; i <= parts.length; i++) usable.add(parts.slice(0, i).join(':'))
  }
  if (argv.length === 1) return commands[argv[0]] ? argv[0] : undefined
  const final: string[] = []
  const join = (word?: string) => [...final, ...(word ? [word] : [])].filter(Boolean).join(':')
  const takesArgs = () => {
    const command = commands[join()]
    return Boolean(command && (command.strict === false || Object.keys(command.args ?? {}).length > 0))
  }
  for (const arg of argv) {
    if (usable.has(join(arg))) final.push(arg)
    else if (arg.includes('=') || arg.startsWith('-') || takesArgs()) break
    else final.push(arg)
  }
  const id = join()
  return commands[id] ? id : undefined
}

/** oclif reads a theme from the user's config folder ($XDG_CONFIG_HOME/<dirname>/theme.json): then oclif starts. */
function userThemeFileExists(bin: string, dirname: string, env: NodeJS.ProcessEnv): boolean {
  const scoped = `${bin.replaceAll('@', '').replaceAll(/[/-]/g, '_')}_CONFIG_DIR`.toUpperCase()
  let dir = env[scoped]
  if (!dir) {
    const home = env.HOME ?? env.USERPROFILE ?? ''
    const base = env.XDG_CONFIG_HOME || (process.platform === 'win32' && env.LOCALAPPDATA) || `${home}/.config`
    dir = `${base}/${dirname}`
  }
  return existsSync(`${dir}/theme.json`)
}
