// promtool (Debian's prometheus package, which scripts/sandbox.sh installs) checks the rules
// retailops generates for every SLI type: syntax, templates and the duplicate-rule lint.
import {mkdtemp, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'
import {describe, expect, it} from 'vitest'

import {sloProject} from '../../unit/slo/fixtures.js'
import {generateRules, renderRulesYaml} from '../../../src/slo/rules.js'
import {PROMTOOL} from './prometheus.js'

const config = sloProject()

describe('generated SLO rules', () => {
  it('pass promtool check rules', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'slo-rules-'))
    const file = path.join(dir, 'rules.yml')
    await writeFile(file, await renderRulesYaml(generateRules({config, version: '0.1.0'})))
    const r = await execa(PROMTOOL, ['check', 'rules', file], {reject: false})
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/SUCCESS: \d+ rules found/)
  })
})
