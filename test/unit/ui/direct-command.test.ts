// bin/run.js starts a command of this package without oclif's Config.load when directCommand()
// names one (issue 18: fast everyday commands); everything else is left to oclif.
import {mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {pathToFileURL} from 'node:url'

import {describe, expect, it} from 'vitest'

import {directCommand, spacedCommandId} from '../../../src/ui/fast-path.js'
import {ROOT} from '../../support/paths.js'

const manifest = JSON.parse(readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8')) as {
  commands: Record<string, {strict?: boolean; args?: Record<string, unknown>}>
}
const root = pathToFileURL(`${ROOT}/`)
/** An environment without the variables that hand the start to oclif. */
const env = {HOME: mkdtempSync(path.join(os.tmpdir(), 'ro-direct-home-'))}

describe('the command id read from spaced words, as oclif reads it', () => {
  it.each([
    [['config', 'validate'], 'config:validate'],
    [['config', 'validate', '--json'], 'config:validate'],
    [['rollout', 'status', 'cart'], 'rollout:status'],
    [['slo', 'rules', '--output', 'x.yaml'], 'slo:rules'],
    [['slo'], 'slo'],
    [['dr', 'plan', '-e', 'prod'], 'dr:plan'],
    [['render'], 'render'],
    [['render', '--tenant', 'acme'], 'render'],
  ])('%j is %s', (argv, id) => {
    expect(spacedCommandId(argv, manifest.commands)).toBe(id)
  })

  it.each([
    [['config']],
    [['help', 'rollout']],
    [['rollout', 'bogus']],
    [['nosuchcommand']],
    [['--json']],
    [['config', 'x=y']],
  ])('%j names no command of the manifest', (argv) => {
    expect(spacedCommandId(argv, manifest.commands)).toBeUndefined()
  })

  it('stops at a command that takes arguments: the next word is its argument, not a subcommand', () => {
    const commands = {deploy: {args: {service: {}}}, 'deploy:status': {}, build: {strict: false}}
    expect(spacedCommandId(['deploy', 'status'], commands)).toBe('deploy:status')
    expect(spacedCommandId(['build', 'cart', 'catalog'], commands)).toBe('build')
  })
})

describe('directCommand', () => {
  /** A copy of the package (package.json, manifest) with the given files of a build, empty. */
  const build = (files: string[]) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ro-direct-build-'))
    for (const file of ['package.json', 'oclif.manifest.json'])
      writeFileSync(path.join(dir, file), readFileSync(path.join(ROOT, file)))
    for (const file of files) {
      mkdirSync(path.dirname(path.join(dir, file)), {recursive: true})
      writeFileSync(path.join(dir, file), '')
    }
    return pathToFileURL(`${dir}/`)
  }

  it('names the bundled module, the arguments after the id and the package', () => {
    const direct = directCommand(['rollout', 'history', 'cart', '--json'], root, env)
    expect(direct).toMatchObject({
      id: 'rollout:history',
      argv: ['cart', '--json'],
      bin: 'retailops',
      root: ROOT,
      exitCodes: {default: 1, nonExistentFlag: 2},
    })
    expect(direct?.module.pathname).toMatch(/\/dist\/direct\/commands\/rollout\/history\.js$/)
    expect(direct?.runner.pathname).toMatch(/\/dist\/direct\/commands\/_base\/direct\.js$/)
  })

  it('starts an everyday command from its own file of the build (dist/direct/solo), runner and command in one', () => {
    const root = build(['dist/direct/commands/_base/direct.js', 'dist/direct/solo/commands/config/validate.js'])
    const solo = directCommand(['config', 'validate', '--json'], root, env)
    expect(solo).toMatchObject({id: 'config:validate', argv: ['--json']})
    expect(solo?.module.href).toBe(new URL('dist/direct/solo/commands/config/validate.js', root).href)
    expect(solo?.runner.href).toBe(solo?.module.href)
    // A command without one, or a build without it, starts from the split bundle.
    const other = directCommand(['slo', 'rules'], root, env)
    expect(other?.module.href).toBe(new URL('dist/direct/commands/slo/rules.js', root).href)
    expect(other?.runner.href).toBe(new URL('dist/direct/commands/_base/direct.js', root).href)
    const split = directCommand(['config', 'validate'], build(['dist/direct/commands/_base/direct.js']), env)
    expect(split?.runner.pathname).toMatch(/\/dist\/direct\/commands\/_base\/direct\.js$/)
  })

  it.each([
    [['config', 'validate', '--help']],
    [['config', 'validate', '-h']],
    [['--version']],
    [['-v']],
    [['help', 'config']],
    [['config']],
    [['nosuchcommand', '--json']],
    [[]],
  ])('leaves %j to oclif (help, version, topics, other plugins, typos)', (argv) => {
    expect(directCommand(argv, root, env)).toBeUndefined()
  })

  it('keeps a help flag after -- as an argument', () => {
    expect(directCommand(['render', '--', '--help'], root, env)?.id).toBe('render')
  })

  it.each([{DEBUG: '*'}, {RETAILOPS_DEBUG: '1'}, {RETAILOPS_DIRECT_START: '0'}])(
    'leaves the start to oclif with %j',
    (extra) => {
      expect(directCommand(['config', 'validate'], root, {...env, ...extra})).toBeUndefined()
    },
  )

  it("leaves the start to oclif when the user has a theme (oclif's config folder)", () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'ro-direct-theme-'))
    mkdirSync(path.join(home, '.config', 'retailops'), {recursive: true})
    writeFileSync(path.join(home, '.config', 'retailops', 'theme.json'), '{}')
    expect(directCommand(['config', 'validate'], root, {HOME: home})).toBeUndefined()
    expect(directCommand(['config', 'validate'], root, {HOME: home, XDG_CONFIG_HOME: env.HOME})).toBeDefined()
  })

  it('leaves a package with hooks, or a manifest of another version, to oclif', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      version: string
      oclif: Record<string, unknown>
    }
    const copy = (pkgJson: unknown, manifestVersion: string) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'ro-direct-pkg-'))
      writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkgJson))
      writeFileSync(path.join(dir, 'oclif.manifest.json'), JSON.stringify({...manifest, version: manifestVersion}))
      mkdirSync(path.join(dir, 'dist', 'direct', 'commands', '_base'), {recursive: true})
      writeFileSync(path.join(dir, 'dist', 'direct', 'commands', '_base', 'direct.js'), '')
      return pathToFileURL(`${dir}/`)
    }
    expect(directCommand(['config', 'validate'], copy(pkg, pkg.version), env)?.id).toBe('config:validate')
    const hooks = {...pkg, oclif: {...pkg.oclif, hooks: {init: './dist/hooks/init.js'}}}
    expect(directCommand(['config', 'validate'], copy(hooks, pkg.version), env)).toBeUndefined()
    expect(directCommand(['config', 'validate'], copy(pkg, '0.0.0-other'), env)).toBeUndefined()
  })

  it('leaves a build without the bundle (dist/direct) to oclif', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ro-direct-nobundle-'))
    for (const file of ['package.json', 'oclif.manifest.json'])
      writeFileSync(path.join(dir, file), readFileSync(path.join(ROOT, file)))
    expect(directCommand(['config', 'validate'], pathToFileURL(`${dir}/`), env)).toBeUndefined()
  })
})
