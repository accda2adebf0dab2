import {mkdtemp, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {findConfigFile, loadConfig} from '../../../src/config/load.js'
import {parseConfig} from '../../../src/config/parse.js'
import {jsonSchema} from '../../../src/config/schema.js'
import {ConfigError, NotFoundError} from '../../../src/errors/index.js'

const minimal = `project: shop
registry: {url: 127.0.0.1:5000, insecure: true}
services:
  checkout:
    tier: revenue-critical
`

function issuesOf(text: string) {
  try {
    parseConfig(text, 'retailops.yaml')
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return (error as ConfigError).issues
  }
  throw new Error('expected the configuration to be rejected')
}

describe('parseConfig', () => {
  it('fills production defaults for a minimal file', () => {
    const c = parseConfig(minimal)
    expect(c.services.checkout.scaling).toMatchObject({minReplicas: 2, maxReplicas: 10, targetUtilization: 0.7})
    expect(c.services.checkout.resources.limits).toEqual({cpu: '500m', memory: '256Mi'})
    expect(c.tiers['revenue-critical']).toEqual({rto: '15m', rpo: '5m', minReplicas: 2})
    expect(c.signing.passwordEnv).toBe('COSIGN_PASSWORD')
    expect(c.version).toBe('1')
  })

  it('names the line, column and key path of a wrong enum value', () => {
    const issues = issuesOf(minimal.replace('revenue-critical', 'critical'))
    expect(issues).toHaveLength(1)
    expect(issues[0]).toMatchObject({line: 5, path: 'services.checkout.tier'})
    expect(issues[0].message).toContain('"revenue-critical", "operational", "tolerant"')
  })

  it('reports unknown keys (typos) at the mapping that holds them', () => {
    const issues = issuesOf(`${minimal}    replcas: 3\n`)
    expect(issues[0].path).toBe('services.checkout')
    expect(issues[0].message).toContain('unknown key "replcas"')
    expect(issues[0].line).toBe(5)
  })

  it('reports every problem at once, including cross-references', () => {
    const issues = issuesOf(`project: Shop_1
registry: {url: r}
services:
  cart: {tier: operational, dependsOn: [pricing], scaling: {minReplicas: 4, maxReplicas: 2}}
campaigns:
  - {name: bf, start: "2026-11-27T00:00:00Z", end: "2026-11-26T00:00:00Z", peak: {search: {rps: 10}}}
`)
    const paths = issues.map((i) => i.path)
    expect(paths).toEqual(
      expect.arrayContaining([
        'project',
        'services.cart.scaling.maxReplicas',
        'services.cart.dependsOn',
        'campaigns[0].end',
        'campaigns[0].peak.search',
      ]),
    )
    expect(issues.find((i) => i.path === 'services.cart.dependsOn')?.message).toContain('"pricing"')
  })

  it('reports YAML syntax errors with their line', () => {
    const issues = issuesOf('project: shop\nservices: [\n')
    expect(issues[0].message).toMatch(/^YAML syntax/)
    expect(issues[0].line).toBeGreaterThanOrEqual(2)
  })

  it('rejects bad durations and quantities with what is expected', () => {
    const issues = issuesOf(`${minimal}    dr: {rto: fast, rpo: 5m}\n    resources: {requests: {cpu: lots}}\n`)
    expect(issues.map((i) => i.path)).toEqual(
      expect.arrayContaining(['services.checkout.dr.rto', 'services.checkout.resources.requests.cpu']),
    )
    expect(issues.find((i) => i.path === 'services.checkout.dr.rto')?.message).toContain('30s, 15m, 2h or 28d')
  })
})

describe('findConfigFile and loadConfig', () => {
  it('finds retailops.yaml in a parent folder and resolves relative to it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-config-'))
    await writeFile(path.join(dir, 'retailops.yaml'), minimal)
    const nested = path.join(dir, 'a', 'b')
    await import('node:fs/promises').then((fs) => fs.mkdir(nested, {recursive: true}))
    expect(findConfigFile(undefined, nested)).toBe(path.join(dir, 'retailops.yaml'))
    const loaded = await loadConfig(undefined, nested)
    expect(loaded.dir).toBe(dir)
    expect(loaded.config.project).toBe('shop')
  })

  it('says how to start when there is no configuration', () => {
    const previous = process.env.RETAILOPS_CONFIG
    delete process.env.RETAILOPS_CONFIG
    try {
      expect(() => findConfigFile(undefined, '/')).toThrow(NotFoundError)
      expect(() => findConfigFile('/nonexistent/retailops.yaml')).toThrow(/does not exist/)
    } finally {
      if (previous !== undefined) process.env.RETAILOPS_CONFIG = previous
    }
  })
})

describe('jsonSchema', () => {
  it('exports the input schema with descriptions for editors', () => {
    const schema = jsonSchema() as {properties: Record<string, {description?: string}>; required: string[]}
    expect(schema.required).toEqual(expect.arrayContaining(['project', 'registry', 'services']))
    expect(schema.properties.project.description).toContain('Prefix')
    expect(JSON.stringify(schema)).toContain('revenue-critical')
  })
})
