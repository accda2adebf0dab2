// config validate through the built CLI: a hostile retailops.yaml ends in exit 3 (CONFIG), quickly.
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../../support/cli.js'

describe('through the CLI', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ro-validate-'))
  })
  afterAll(() => rm(dir, {recursive: true, force: true}))

  const validate = async (text: string | Buffer) => {
    await writeFile(path.join(dir, 'retailops.yaml'), text)
    return runCli(['config', 'validate', '--json'], {cwd: dir, built: true})
  }

  it('exits 3 (CONFIG) for an alias bomb', async () => {
    const r = await validate(
      `project: shop\nregistry: {url: r}\na: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\nservices: {cart: {tier: operational}}\n`,
    )
    expect(r.exitCode).toBe(3)
    expect(JSON.parse(r.stdout).error.code).toBe('CONFIG')
  })

  it('exits 3 for a 10 MB file, at once', async () => {
    const started = performance.now()
    const r = await validate(Buffer.alloc(10 * 1024 * 1024, 'x'))
    expect(r.exitCode).toBe(3)
    expect(JSON.parse(r.stdout).error.message).toContain('the file is 10.0 MiB')
    expect(performance.now() - started).toBeLessThan(10_000)
  })
})
