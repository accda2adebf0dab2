import {execFile} from 'node:child_process'
import {mkdtemp, readdir, readFile, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {pathToFileURL} from 'node:url'
import {promisify} from 'node:util'

import {beforeAll, describe, expect, it} from 'vitest'
import {parse} from 'yaml'

import {runCli, type CliOptions} from '../../support/cli.js'
import {ROOT} from '../../support/paths.js'

// The built CLI, run as users run it: these tests need `npm run build` (scripts/test.sh does it).
const run = (args: string[], options: CliOptions = {}) => runCli(args, {...options, built: true})

let project: string

beforeAll(async () => {
  project = await mkdtemp(path.join(os.tmpdir(), 'ro-cli-'))
  const r = await run(['init', '--directory', project, '--project', 'shop', '--services', 'catalog,cart', '--json'])
  expect(r.exitCode).toBe(0)
})

describe('the JSON envelope and exit codes', () => {
  it('prints exactly one JSON document on stdout on success', async () => {
    const r = await run(['config', 'validate', '--json'], {cwd: project})
    expect(r.exitCode).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc).toMatchObject({
      status: 0,
      result: {project: 'shop', services: [{name: 'catalog'}, {name: 'cart'}]},
      warnings: [],
    })
  })

  it('reports a configuration error once, with exit code 3, file and line', async () => {
    const bad = path.join(project, 'bad.yaml')
    await writeFile(bad, 'project: shop\nregistry: {url: r}\nservices:\n  cart: {tier: gold}\n')
    const json = await run(['config', 'validate', '--config', bad, '--json'])
    expect(json.exitCode).toBe(3)
    const doc = JSON.parse(json.stdout)
    expect(doc.error).toMatchObject({code: 'CONFIG', exitCode: 3})
    expect(doc.error.details.issues[0]).toMatchObject({line: 4, path: 'services.cart.tier'})

    const human = await run(['config', 'validate', '--config', bad])
    expect(human.exitCode).toBe(3)
    expect(human.stdout).toBe('')
    expect(human.stderr.match(/Invalid configuration/g)).toHaveLength(1)
    expect(human.stderr).toContain(`${bad}:4:`)
    expect(human.stderr).toContain('Try this:')
    // Not a terminal: no colour escapes.
    expect(human.stderr).not.toContain('\u001B[')
  })

  it('gives flag errors exit code 2 with the JSON envelope', async () => {
    const r = await run(['init', '--ci', 'jenkins', '--json'])
    expect(r.exitCode).toBe(2)
    expect(JSON.parse(r.stdout).error).toMatchObject({code: 'USAGE', exitCode: 2})
  })

  it('gives a missing project exit code 4 and says how to start', async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), 'ro-empty-'))
    const r = await run(['config', 'validate'], {cwd: empty})
    expect(r.exitCode).toBe(4)
    expect(r.stderr).toContain('retailops init')
  })

  it('does not prompt without a terminal: lists the missing flags, or takes the defaults with --yes', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-noprompt-'))
    const missing = await run(['init', '--directory', dir, '--services', 'catalog', '--json'], {env: {CI: ''}})
    expect(missing.exitCode).toBe(2)
    expect(JSON.parse(missing.stdout).error.details.missingFlags).toEqual(['project'])
    expect((await import('node:fs')).existsSync(path.join(dir, 'retailops.yaml'))).toBe(false)
    const r = await run(['init', '--directory', dir, '--services', 'catalog', '--yes'], {env: {CI: ''}})
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toContain('Next:')
  })

  it('answers --version and --help', async () => {
    const v = await run(['--version'])
    expect(v.stdout).toMatch(/^retailops\/\d+\.\d+\.\d+/)
    const h = await run(['--help'])
    expect(h.stdout).toContain('doctor')
  })
})

describe("every command's help", () => {
  it('ends with the exit codes the command declares, as --help, -h and help COMMAND', async () => {
    const manifest = (await import('../../../oclif.manifest.json', {with: {type: 'json'}})).default as {
      commands: Record<string, {exitCodes?: string[]}>
    }
    const {ExitCode} = await import('../../../src/errors/exit-codes.js')
    const ids = Object.keys(manifest.commands)
    expect(ids.length).toBeGreaterThanOrEqual(28)
    for (const id of ids) {
      const codes = manifest.commands[id].exitCodes ?? []
      expect(codes, id).toEqual(expect.arrayContaining(['OK', 'USAGE']))
      const r = await run([...id.split(':'), '--help'], {env: {COLUMNS: '200'}})
      expect(r.exitCode, id).toBe(0)
      const section = r.stdout.slice(r.stdout.indexOf('EXIT CODES\n'))
      expect(section, id).toMatch(/^EXIT CODES\n/)
      const listed = [...section.matchAll(/^\s+(\d+)\s+([A-Z_]+):/gm)].map((m) => [Number(m[1]), m[2]])
      expect(listed, id).toEqual(codes.map((name) => [ExitCode[name as keyof typeof ExitCode], name]))
    }
    for (const args of [
      ['help', 'rollout', 'status'],
      ['rollout', 'status', '-h'],
    ]) {
      expect((await run(args)).stdout, args.join(' ')).toMatch(/\nEXIT CODES\n {2}0 +OK: Success/)
    }
    // One process per command (30 and more): 17 s on a 2-core machine that also runs the integration suite.
  }, 120_000)
})

describe('the start-up fast path', () => {
  it('prints the same root help as oclif, without loading it', async () => {
    for (const columns of ['80', '60']) {
      const oclif = await run(['help'], {env: {COLUMNS: columns}})
      const fast = await run(['--help'], {env: {COLUMNS: columns}})
      expect(fast.stdout).toBe(oclif.stdout)
    }
    const v = await run(['-v'])
    expect(v.stdout.trim()).toBe(
      `retailops/${(await import('../../../package.json', {with: {type: 'json'}})).default.version} ${process.platform}-${process.arch} node-${process.version}`,
    )
  })
})

describe("the direct start of a command (without oclif's Config.load)", () => {
  /** A run of the built CLI, with the direct start or (RETAILOPS_DIRECT_START=0) oclif's own, and the CommonJS modules it loaded. */
  async function both(args: string[], options: CliOptions = {}) {
    const result = []
    for (const direct of [true, false]) {
      const list = path.join(project, `loaded-${direct}`)
      const r = await run(args, {
        ...options,
        env: {
          ...options.env,
          RETAILOPS_DIRECT_START: direct ? undefined : '0',
          NODE_OPTIONS: `--require ${path.join(ROOT, 'test/support/loaded-modules.cjs')}`,
          RETAILOPS_TEST_LOADED_MODULES: list,
        },
      })
      result.push({...r, loaded: (await readFile(list, 'utf8')).split('\n')})
    }
    return {direct: result[0], oclif: result[1]}
  }

  it.each([
    ['success', ['config', 'validate']],
    ['success, --json', ['config', 'validate', '--json']],
    ['a flag error', ['config', 'validate', '--bogus']],
    ['a flag error, --json', ['render', '--tenant', '--json']],
    ['a missing flag value', ['slo', 'rules', '--output']],
    ['a configuration error, --json', ['config', 'validate', '--config', 'missing.yaml', '--json']],
    ['a command with arguments', ['render', 'cart', '--json']],
  ])('answers as oclif does: %s', async (_, args) => {
    const {direct, oclif} = await both(args, {cwd: project})
    expect(direct.exitCode).toBe(oclif.exitCode)
    expect(direct.stdout).toBe(oclif.stdout)
    // Node's warnings name the process (vitest's NODE_ENV=test makes oclif warn of a command that failed before parsing).
    const withoutPid = (text: string) => text.replaceAll(/\(node:\d+\)/g, '(node)')
    expect(withoutPid(direct.stderr)).toBe(withoutPid(oclif.stderr))
    // oclif's own start loads its Config (plugin discovery) from node_modules; the direct start
    // loads the bundled command (dist/direct) and no file of oclif's.
    expect(oclif.loaded.some((m) => m.endsWith('@oclif/core/lib/config/config.js'))).toBe(true)
    expect(direct.loaded.filter((m) => m.includes('/node_modules/@oclif/'))).toEqual([])
  })

  it('reads --json from RETAILOPS_CONTENT_TYPE as oclif does', async () => {
    const {direct, oclif} = await both(['config', 'validate'], {cwd: project, env: {RETAILOPS_CONTENT_TYPE: 'json'}})
    expect(JSON.parse(direct.stdout)).toMatchObject({status: 0, result: {project: 'shop'}})
    expect(direct.stdout).toBe(oclif.stdout)
  })

  it('leaves help, version, typos and words that extend no command id to oclif', async () => {
    // `config validate extra`: read as oclif reads ids, "config:validate:extra" is no command, so
    // oclif decides (it answers "Unexpected argument: extra", exit 2).
    for (const args of [
      ['config', 'validate', '--help'],
      ['help', 'render'],
      ['config'],
      ['rendr'],
      ['config', 'validate', 'extra'],
    ]) {
      const {direct, oclif} = await both(args, {cwd: project})
      expect(direct.exitCode, args.join(' ')).toBe(oclif.exitCode)
      expect(direct.stdout, args.join(' ')).toBe(oclif.stdout)
      expect(
        direct.loaded.some((m) => m.endsWith('@oclif/core/lib/config/config.js')),
        args.join(' '),
      ).toBe(true)
    }
  })
})

describe('rollout status from the built CLI', () => {
  it("connects to the API server before it loads TLS, and answers as oclif's start does", async () => {
    // src/kubernetes/http.ts opens the first connection, then loads node:tls and makes the secure
    // context while the TCP handshake runs: at the first connection, no TLS module is loaded yet.
    const runs = []
    for (const direct of [true, false]) {
      const list = path.join(project, `at-connect-${direct}`)
      const r = await run(['rollout', 'status', '--json'], {
        cwd: project,
        env: {
          RETAILOPS_DIRECT_START: direct ? undefined : '0',
          NODE_OPTIONS: `--import ${pathToFileURL(path.join(ROOT, 'test/support/at-first-connect.mjs')).href}`,
          RETAILOPS_TEST_AT_CONNECT: list,
        },
      })
      runs.push({...r, atConnect: (await readFile(list, 'utf8')).split('\n')})
    }
    const [direct, oclif] = runs
    expect(direct.stderr).toBe('')
    expect(direct.exitCode).toBe(0)
    expect(JSON.parse(direct.stdout)).toMatchObject({status: 0, result: {rollouts: [], timedOut: false}})
    expect(direct.stdout).toBe(oclif.stdout)
    expect(direct.atConnect).toContain('NativeModule net')
    expect(direct.atConnect.filter((m) => /^NativeModule (tls|https|_tls_wrap|internal\/tls\/)/.test(m))).toEqual([])
  })
})

describe("the bundle's deferred oclif modules (scripts/bundle-direct.mjs DEFERRED)", () => {
  it('leaves Config.load, plugin discovery, help and ejs out of dist/direct, and loads them from node_modules when called', async () => {
    const folder = path.join(ROOT, 'dist/direct')
    const chunks = (await readdir(folder, {recursive: true})).filter((f) => f.endsWith('.js'))
    const bundle = (await Promise.all(chunks.map((f) => readFile(path.join(folder, f), 'utf8')))).join('\n')
    // The direct start's own modules of oclif are there; the ones it never runs are not.
    expect(bundle).toContain('node_modules/@oclif/core/lib/parser/parse.js')
    for (const module of [
      '@oclif/core/lib/config/config.js',
      '@oclif/core/lib/config/plugin.js',
      '@oclif/core/lib/help/index.js',
      'node_modules/ejs/',
      'node_modules/minimatch/',
      'node_modules/tinyglobby/',
    ])
      expect(bundle, module).not.toContain(module)
    // An everyday command's own file (dist/direct/solo) leaves zod and yaml to dist/direct/lib/*.cjs,
    // which it requires on first use (a configuration error above loads zod from there).
    const rollout = await readFile(path.join(folder, 'solo/commands/rollout/status.js'), 'utf8')
    for (const library of ['node_modules/zod/', 'node_modules/yaml/']) expect(rollout, library).not.toContain(library)
    expect(rollout).toContain('zod.cjs')
    expect(await readFile(path.join(folder, 'lib/zod.cjs'), 'utf8')).toContain('Invalid input: expected')
    // zod's English messages only (its other locales, German here, are left out of the bundle).
    expect(bundle).not.toContain('erwartet instanceof')
    expect(bundle).toContain('Invalid input: expected')
    // The bundled command's static run() is oclif's Command.run: Config.load through the stand-in,
    // which requires oclif's real Config from node_modules, then the command as usual.
    const list = path.join(project, 'loaded-deferred')
    const command = pathToFileURL(path.join(folder, 'commands/config/validate.js')).href
    const script = `const {default: Validate} = await import(${JSON.stringify(command)}); await Validate.run(['--json'], ${JSON.stringify(ROOT)})`
    const {stdout} = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      cwd: project,
      env: {
        ...process.env,
        NODE_OPTIONS: `--require ${path.join(ROOT, 'test/support/loaded-modules.cjs')}`,
        RETAILOPS_TEST_LOADED_MODULES: list,
      },
    })
    expect(JSON.parse(stdout)).toMatchObject({status: 0, result: {project: 'shop'}})
    const loaded = (await readFile(list, 'utf8')).split('\n')
    expect(loaded.some((m) => m.endsWith('node_modules/@oclif/core/lib/config/config.js'))).toBe(true)
  })
})

describe('slo rules from the built CLI', () => {
  it('writes through the yaml package what src/report/yaml.ts leaves to it (here a non-ASCII query), as the package writes it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-cli-slo-rules-'))
    const valid = await readFile(path.join(project, 'retailops.yaml'), 'utf8')
    const availability = valid.match(/^( +)- \{name: availability, .*\}$/m)
    expect(availability).not.toBeNull()
    const ratio = `${availability![1]}- {name: region, objective: 99, window: 28d, sli: {type: ratio, good: 'sum(rate(orders_total{région="é"}[{{window}}]))', total: 'orders_total'}}`
    await writeFile(path.join(dir, 'retailops.yaml'), valid.replace(availability![0], `${availability![0]}\n${ratio}`))
    const r = await run(['slo', 'rules'], {cwd: dir})
    expect(r.stderr).toBe('')
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toContain('région="é"')
    // Written by the package (the emitter writes printable ASCII only): a literal block with the
    // query, the shared label sets as its anchors and aliases, and it reads back.
    const doc = parse(r.stdout) as {groups: {name: string; rules: {expr: string}[]}[]}
    const region = doc.groups.find((g) => g.name.includes('region'))
    expect(region?.rules.some((rule) => rule.expr.includes('région="é"'))).toBe(true)
    expect(r.stdout).toMatch(/: &a1\n/)
    expect(r.stdout).toMatch(/: \*a1\n/)
  })
})

describe('the validated-configuration cache of the built CLI', () => {
  it('keeps what config validate accepted, and validates again as soon as the file changes', async () => {
    const xdg = await mkdtemp(path.join(os.tmpdir(), 'ro-cli-config-cache-'))
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-cli-config-cache-project-'))
    const file = path.join(dir, 'retailops.yaml')
    const valid = await readFile(path.join(project, 'retailops.yaml'), 'utf8')
    await writeFile(file, valid)
    const env = {XDG_CACHE_HOME: xdg}
    const first = await run(['config', 'validate', '--json'], {cwd: dir, env})
    expect(first.exitCode).toBe(0)
    const entries = await readdir(path.join(xdg, 'retailops', 'config'))
    expect(entries).toHaveLength(1)
    const entry = path.join(xdg, 'retailops', 'config', entries[0])
    expect((await stat(entry)).mode & 0o777).toBe(0o600)
    expect(JSON.parse(await readFile(entry, 'utf8')).config.project).toBe('shop')
    // A hit answers exactly as a validation does.
    const second = await run(['config', 'validate', '--json'], {cwd: dir, env})
    expect(second.stdout).toBe(first.stdout)
    // One changed line: validated again, the error with its line, although an entry exists.
    await writeFile(file, valid.replace(/tier: [a-z-]+/, 'tier: gold'))
    const broken = await run(['config', 'validate', '--json'], {cwd: dir, env})
    expect(broken.exitCode).toBe(3)
    expect(JSON.parse(broken.stdout).error.details.issues[0]).toMatchObject({path: expect.stringMatching(/\.tier$/)})
    expect(broken.stdout).toContain(`${file}`)
    await writeFile(file, valid)
    expect((await run(['config', 'validate', '--json'], {cwd: dir, env})).stdout).toBe(first.stdout)
  })
})
