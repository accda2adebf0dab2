// The validated-configuration cache (src/config/validated-cache.ts): a retailops.yaml this build
// validated before, byte for byte, is read back without the YAML parser or the schema (issue 18).
import {existsSync, readFileSync, statSync, utimesSync, writeFileSync} from 'node:fs'
import {chmod, mkdtemp, readdir, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {afterEach, beforeEach, describe, expect, it, vi} from 'vitest'

import type {ConfigError} from '../../../src/errors/index.js'

const minimal = `project: shop
registry: {url: 127.0.0.1:5000, insecure: true}
services:
  checkout:
    tier: revenue-critical
    env: {LOG_LEVEL: info}
  cart:
    tier: operational
    dependsOn: [checkout]
environments:
  staging: {cluster: main, namespace: shop-staging}
clusters:
  main: {context: kind-main}
tenants:
  - {name: acme, model: dedicated-namespace}
campaigns:
  - {name: sale, start: '2026-11-27T00:00:00Z', end: '2026-11-28T00:00:00Z', peak: {checkout: {rps: 400}}}
`

let xdg: string
let project: string

/** The modules as the bundle defines them: a build id (scripts/bundle-direct.mjs), fresh each time. */
async function modules(build: string | null = 'build-a') {
  vi.resetModules()
  if (build === null) Reflect.deleteProperty(globalThis, '__RETAILOPS_BUILD__')
  else vi.stubGlobal('__RETAILOPS_BUILD__', build)
  const load = await import('../../../src/config/load.js')
  const cache = await import('../../../src/config/validated-cache.js')
  const parse = await import('../../../src/config/parse.js')
  return {...load, ...cache, ...parse}
}

beforeEach(async () => {
  xdg = await mkdtemp(path.join(os.tmpdir(), 'ro-config-cache-'))
  project = await mkdtemp(path.join(os.tmpdir(), 'ro-config-cache-project-'))
  vi.stubEnv('XDG_CACHE_HOME', xdg)
  vi.stubEnv('RETAILOPS_CONFIG_CACHE', undefined)
  vi.stubEnv('RETAILOPS_CONFIG_CREDENTIALS', undefined)
  await writeFile(path.join(project, 'retailops.yaml'), minimal)
})

afterEach(() => {
  vi.unstubAllEnvs()
  vi.unstubAllGlobals()
  vi.resetModules()
})

const entries = async () => {
  try {
    return await readdir(path.join(xdg, 'retailops', 'config'))
  } catch {
    return []
  }
}

describe('the validated-configuration cache', () => {
  it('gives back exactly what the schema produced, defaults included', async () => {
    const m = await modules()
    const validated = m.parseConfig(minimal, path.join(project, 'retailops.yaml'))
    const first = await m.loadConfig(undefined, project)
    expect(first.config).toStrictEqual(validated)
    expect(await entries()).toHaveLength(1)
    const second = await (await modules()).loadConfig(undefined, project)
    expect(second.config).toStrictEqual(validated)
    expect(second.config.services.checkout.scaling).toMatchObject({minReplicas: 2, maxReplicas: 10})
  })

  it('answers from the entry on the next run (the entry is what is read) and keeps it private', async () => {
    const m = await modules()
    const file = path.join(project, 'retailops.yaml')
    await m.loadConfig(undefined, project)
    const entry = m.entryFile(file)!
    expect(statSync(entry).mode & 0o777).toBe(0o600)
    expect(statSync(path.dirname(entry)).mode & 0o777).toBe(0o700)
    // Proof that a hit reads the entry and nothing else: an entry changed behind its back is believed.
    const stored = JSON.parse(readFileSync(entry, 'utf8')) as {key: string; config: {project: string}}
    writeFileSync(entry, JSON.stringify({...stored, config: {...stored.config, project: 'from-the-cache'}}))
    expect((await (await modules()).loadConfig(undefined, project)).config.project).toBe('from-the-cache')
  })

  it('validates again when one byte of the file changed, and reports the error with its line', async () => {
    const m = await modules()
    await m.loadConfig(undefined, project)
    await writeFile(path.join(project, 'retailops.yaml'), minimal.replace('tier: operational', 'tier: gold'))
    const error = await (await modules()).loadConfig(undefined, project).catch((e: unknown) => e)
    // A ConfigError of the modules loaded afresh above (another class than this file's import).
    expect(error).toMatchObject({code: 'CONFIG'})
    expect((error as ConfigError).issues[0]).toMatchObject({line: 8, path: 'services.cart.tier'})
  })

  it("ignores another build's entry (a changed schema) and replaces it", async () => {
    await (await modules('build-a')).loadConfig(undefined, project)
    const m = await modules('build-b')
    const entry = m.entryFile(path.join(project, 'retailops.yaml'))!
    const before = JSON.parse(readFileSync(entry, 'utf8')) as {key: string; config: object}
    writeFileSync(entry, JSON.stringify({...before, config: {project: 'stale'}}))
    expect((await m.loadConfig(undefined, project)).config.project).toBe('shop')
    expect((JSON.parse(readFileSync(entry, 'utf8')) as {key: string}).key).not.toBe(before.key)
  })

  it('is not used by code outside the bundle (no build id: the sources, tests, oclif’s own start)', async () => {
    const m = await modules(null)
    expect((await m.loadConfig(undefined, project)).config.project).toBe('shop')
    expect(await entries()).toEqual([])
  })

  it('never writes a configuration holding an inline credential', async () => {
    await writeFile(
      path.join(project, 'retailops.yaml'),
      minimal.replace('LOG_LEVEL: info', 'LOG_LEVEL: info, DATABASE_PASSWORD: hunter2-secret'),
    )
    const m = await modules()
    expect((await m.loadConfig(undefined, project)).config.services.checkout.env.DATABASE_PASSWORD).toBe(
      'hunter2-secret',
    )
    expect(await entries()).toEqual([])
  })

  it('is neither read nor written for a job whose credentials come from a Secret', async () => {
    const credentials = path.join(project, 'credentials.json')
    await writeFile(credentials, '[]')
    vi.stubEnv('RETAILOPS_CONFIG_CREDENTIALS', credentials)
    await (await modules()).loadConfig(undefined, project)
    expect(await entries()).toEqual([])
  })

  it('is off with RETAILOPS_CONFIG_CACHE=0', async () => {
    vi.stubEnv('RETAILOPS_CONFIG_CACHE', '0')
    const m = await modules()
    expect(m.entryFile(path.join(project, 'retailops.yaml'))).toBeUndefined()
    await m.loadConfig(undefined, project)
    expect(await entries()).toEqual([])
  })

  it('costs only the speed-up when the cache folder cannot be written', async () => {
    await chmod(xdg, 0o500)
    try {
      const m = await modules()
      expect((await m.loadConfig(undefined, project)).config.project).toBe('shop')
      expect(existsSync(path.join(xdg, 'retailops'))).toBe(process.getuid?.() === 0)
    } finally {
      await chmod(xdg, 0o700)
    }
  })

  it('keeps one entry per configuration file', async () => {
    const m = await modules()
    await m.loadConfig(undefined, project)
    await writeFile(path.join(project, 'retailops.yaml'), `${minimal}# edited\n`)
    await (await modules()).loadConfig(undefined, project)
    expect(await entries()).toHaveLength(1)
  })

  it('keeps at most MAX_ENTRIES entries, dropping the least recently written', async () => {
    const m = await modules()
    const folder = path.join(xdg, 'retailops', 'config')
    await m.loadConfig(undefined, project)
    const [own] = await entries()
    // Old entries of projects long gone (temporary folders of tests and CI checkouts).
    const old = Date.now() / 1000 - 3600
    for (let i = 0; i < m.MAX_ENTRIES + 20; i++) {
      const file = path.join(folder, `gone-${i}.json`)
      writeFileSync(file, '{}')
      utimesSync(file, old + i, old + i)
    }
    await writeFile(path.join(project, 'retailops.yaml'), `${minimal}# edited\n`)
    await (await modules()).loadConfig(undefined, project)
    const left = await entries()
    expect(left).toHaveLength(m.MAX_ENTRIES)
    expect(left).toContain(own)
    expect(left).not.toContain('gone-0.json')
    expect(left).toContain(`gone-${m.MAX_ENTRIES + 19}.json`)
  })
})
