import {readFileSync} from 'node:fs'

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
