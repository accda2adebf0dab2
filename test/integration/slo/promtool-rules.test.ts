// promtool (Debian's prometheus package, which scripts/sandbox.sh installs) checks the rules
// retailops generates for every SLI type: syntax, templates and the duplicate-rule lint.
import {mkdtemp, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'
import {describe, expect, it} from 'vitest'

import {parseConfig} from '../../../src/config/parse.js'
import {generateRules, renderRulesYaml} from '../../../src/slo/rules.js'
import {PROMTOOL} from './prometheus.js'

const config = parseConfig(`
project: shop
registry: {url: 127.0.0.1:5000}
services:
  checkout:
    tier: revenue-critical
    slos:
      - {name: availability, objective: 99.9, window: 30d, sli: {type: availability}}
      - {name: latency, objective: 99, window: 28d, sli: {type: latency, thresholdMs: 300, route: /checkout}}
      - name: checkout-success
        objective: 99.5
        window: 7d
        sli: {type: ratio, good: 'sum(rate(checkout_success_total{service="checkout"}[{{window}}]))', total: 'checkout_attempts_total{service="checkout"}'}
  catalog:
    tier: operational
    slos:
      - {name: availability, objective: 99.5, window: 30d, sli: {type: availability}}
`)

describe('generated SLO rules', () => {
  it('pass promtool check rules', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'slo-rules-'))
    const file = path.join(dir, 'rules.yml')
    await writeFile(file, renderRulesYaml(generateRules({config, version: '0.1.0'})))
    const r = await execa(PROMTOOL, ['check', 'rules', file], {reject: false})
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/SUCCESS: \d+ rules found/)
  })
})
