import {readFileSync} from 'node:fs'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cli, createSourceDb, dbUrl, dropDb, random, drProject} from './helpers.js'

// The look for targets earlier drills left behind (issue 12, item 10): when it cannot look into a
// server, the drill says that check failed, where, why and how to look by hand, instead of
// reading as "none found". One datastore on the sandbox's PostgreSQL (checked), one on a port
// nothing listens on (the check fails there).
const source = `t_dr_lo_${random()}`
const env = {T_DR_OK_URL: dbUrl(source), T_DR_DOWN_URL: 'postgres://retailops@127.0.0.1:1/orders'}

const config = `
project: shop
registry: {url: 127.0.0.1:5000, insecure: true}
services:
  orders:
    tier: revenue-critical
  ledger:
    tier: operational
datastores:
  - name: orders-db
    service: orders
    provider: postgres
    postgres: {urlEnv: T_DR_OK_URL}
    validation:
      - {name: order-count, query: "select count(*) from orders", expect: {equals: 20}}
  - name: ledger-db
    service: ledger
    provider: postgres
    postgres: {urlEnv: T_DR_DOWN_URL}
    validation:
      - {name: rows, query: "select 1", expect: {equals: 1}}
`

beforeAll(async () => {
  await createSourceDb(source, 20, 60)
})
afterAll(async () => {
  await dropDb(source)
})

describe('dr drill: a leftovers check that fails', () => {
  it('says the check failed for the unreachable server (why, how to look by hand), and what it did check', async () => {
    const p = drProject(config)
    const result = await cli(
      [
        'dr',
        'drill',
        '--json',
        '--no-recoverability',
        '--allow-source-server',
        'the sandbox has one PostgreSQL server',
      ],
      {cwd: p.dir, env},
    )
    const doc = JSON.parse(result.stdout)
    const record = doc.result ?? doc.error?.details?.record
    expect(record, result.stdout.slice(0, 2000)).toBeTruthy()
    expect(record.leftoverCheck.status).toBe('partial')
    expect(record.leftoverCheck.checked).toEqual(['scratch databases on 127.0.0.1:5432'])
    expect(record.leftoverCheck.failures).toEqual([
      {
        what: 'scratch databases on 127.0.0.1:1',
        reason: expect.stringMatching(/ECONNREFUSED|connect/),
        command: expect.stringContaining("select datname from pg_database where datname like 'retailops_drill_%'"),
      },
    ])
    expect(doc.warnings.join('\n')).toMatch(
      /The check for leftovers of earlier drills failed for scratch databases on 127\.0\.0\.1:1 \(.*ECONNREFUSED.*\): leftovers there are unknown, not absent/,
    )
    const markdown = readFileSync(record.files.markdown, 'utf8')
    expect(markdown).toContain('## Leftovers check failed')
    expect(markdown).toContain('scratch databases on 127.0.0.1:1')
    expect(readFileSync(record.files.html, 'utf8')).toContain('Leftovers check failed')
    // The reachable datastore was still drilled.
    expect(record.datastores.find((d: {name: string}) => d.name === 'orders-db').status).toBe('passed')
  })
})
