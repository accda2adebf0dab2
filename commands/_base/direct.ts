import type {Command} from '@oclif/core/command'
import type {Config} from '@oclif/core/config'

import type {DirectCommand} from '../../src/ui/fast-path.js'

type CommandClass = (new (argv: string[], config: Config) => Command) & typeof Command

/** oclif's process-wide cache (not among its package's exports: scripts/bundle-direct.mjs resolves it). */
interface OclifCache {
  default: {getInstance(): Map<string, unknown>}
}

/**
 * Runs one command of this package as oclif's execute() would (the command's _run, then flush; an
 * error that escapes the command is oclif's handle()), with a Config made from the manifest: no
 * Config.load, so no plugin discovery, no reading of three plugins' package.json and manifests,
 * no theme. (Command.run would load one whatever it is given.) bin/run.js comes here only when
 * `directCommand` found nothing else for oclif to do: no hooks, help, version flag, debug output
 * or user theme. Only the bundle (dist/direct) has this module.
 */
export async function runDirect(direct: DirectCommand): Promise<unknown> {
  try {
    const loaded = (await import(direct.module.href)) as {default: CommandClass}
    const CommandClass = loaded.default
    CommandClass.id = direct.id
    const config = directConfig(direct)
    // What Config.load leaves in the cache for the parser (exit codes of flag errors) and the spinner.
    // @ts-expect-error -- not in @oclif/core's exports; the bundle resolves it to lib/cache.js
    const cache = commonJs((await import('@oclif/core/lib/cache')) as OclifCache).default.getInstance()
    cache.set('exitCodes', direct.exitCodes)
    if (!cache.has('config')) cache.set('config', config)
    const command = new CommandClass(direct.argv, config) as unknown as {_run(): Promise<unknown>}
    const result = await command._run()
    const {flush} = commonJs(await import('@oclif/core/flush'))
    await flush()
    return result
  } catch (error) {
    const {handle} = commonJs(await import('@oclif/core/handle'))
    return handle(error instanceof Error ? error : new Error(String(error)))
  }
}

/** What a command reads from its Config: names, version, user agent, scoped environment variables, hooks (none). */
export function directConfig(direct: DirectCommand): Config {
  const scopedEnvVarKey = (key: string) =>
    [direct.bin, key]
      .map((part) => part.replaceAll('@', '').replaceAll(/[/-]/g, '_'))
      .join('_')
      .toUpperCase()
  const scopedEnvVar = (key: string) => process.env[scopedEnvVarKey(key)] || undefined
  const config = {
    root: direct.root,
    name: direct.name,
    version: direct.version,
    bin: direct.bin,
    dirname: direct.dirname,
    pjson: {name: direct.name, version: direct.version, oclif: {bin: direct.bin, exitCodes: direct.exitCodes}},
    platform: process.platform,
    arch: process.arch,
    windows: process.platform === 'win32',
    userAgent: `${direct.name}/${direct.version} ${process.platform}-${process.arch} node-${process.version}`,
    topicSeparator: ' ',
    commandIDs: direct.commandIDs,
    findCommand: (id: string) => direct.commands[id],
    scopedEnvVarKey,
    scopedEnvVarKeys: (key: string) => [scopedEnvVarKey(key)],
    scopedEnvVar,
    scopedEnvVarTrue: (key: string) => ['1', 'true'].includes(scopedEnvVar(key) ?? ''),
    // No hooks: directCommand() leaves a package with hooks to oclif.
    runHook: () => Promise.resolve({successes: [], failures: []}),
    theme: undefined,
  }
  return config as unknown as Config
}

/** oclif is CommonJS: imported from the bundle, its exports are the namespace's default. */
function commonJs<T extends object>(namespace: T): T {
  return 'default' in namespace && !(Object.keys(namespace).length > 1) ? (namespace.default as T) : namespace
}
