import {mkdtemp, readFile, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {writeReport} from '../../../src/report/index.js'
import {registerSecret} from '../../../src/ui/secrets.js'

describe('writeReport', () => {
  it('masks secrets in the file it writes, as every output does', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-report-'))
    try {
      registerSecret('registry-pass-77')
      const file = await writeReport(
        path.join(dir, 'nested', 'report.html'),
        [
          '<td>postgres://app:pw1@db/shop</td>',
          '<td>jdbc:postgresql://db/shop?user=app&amp;password=jpw7</td>',
          '<td>login with registry-pass-77</td>',
          '<td>SENTRY_DSN=https://k3y@sentry.example/1</td>',
        ].join('\n'),
      )
      const text = await readFile(file, 'utf8')
      for (const secret of ['pw1', 'jpw7', 'registry-pass-77', 'k3y']) expect(text).not.toContain(secret)
      expect(text).toContain('postgres://app:***@db/shop')
      expect(text).toContain('password=***')
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })
})
