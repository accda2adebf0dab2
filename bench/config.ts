/**
 * Configuration validation benchmark: does `loadConfig` stay linear in the file's size, and is
 * an oversized file refused at once?
 *
 * For files of growing size (1/16, 1/8, 1/4, 1/2 and 1 times the 1 MiB limit), each made of
 * services, half of them invalid (so every file also produces thousands of errors), it prints the
 * median time of --rounds loads, the time per KiB, and the ratio of each time to the smallest
 * file's time against the ratio of their sizes: linear growth keeps the two ratios close.
 * Then the 10 MB case: time until it is refused (it is never read).
 *
 *   npx tsx bench/config.ts [--rounds 5]
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

import {loadConfig, MAX_CONFIG_BYTES} from '../src/config/load.js'
import {ConfigError} from '../src/errors/index.js'

const {values} = parseArgs({options: {rounds: {type: 'string', default: '5'}}})
const rounds = Number(values.rounds)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** A retailops.yaml of about `bytes` bytes: services with env, every other one with a bad tier. */
function configOf(bytes: number): string {
  let text = 'project: shop\nregistry: {url: 127.0.0.1:5000, insecure: true}\nservices:\n'
  for (let i = 0; text.length < bytes - 200; i++) {
    text += `  svc-${i}:\n    tier: ${i % 2 === 0 ? 'operational' : 'bogus'}\n    port: 8080\n    env: {LOG_LEVEL: info, REGION: eu-west-1}\n`
  }
  return text
}

async function timeLoad(file: string): Promise<{ms: number; outcome: string}> {
  const started = performance.now()
  let outcome = 'valid'
  try {
    await loadConfig(file)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    outcome = `refused: ${error.total.toLocaleString('en-US')} problems, ${error.message.split('\n').length} lines shown`
  }
  return {ms: performance.now() - started, outcome}
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-bench-config-'))
try {
  const file = path.join(dir, 'retailops.yaml')
  // One load first, so the smallest file's time (the baseline) does not include JIT warm-up.
  await writeFile(file, configOf(MAX_CONFIG_BYTES / 16))
  await timeLoad(file)
  const rows: {bytes: number; ms: number; outcome: string}[] = []
  for (const share of [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1]) {
    const text = configOf(Math.floor(MAX_CONFIG_BYTES * share))
    await writeFile(file, text)
    const runs: {ms: number; outcome: string}[] = []
    for (let r = 0; r < rounds; r++) runs.push(await timeLoad(file))
    rows.push({bytes: Buffer.byteLength(text), ms: median(runs.map((x) => x.ms)), outcome: runs[0].outcome})
  }
  const base = rows[0]
  console.log('size        median ms   ms/KiB   size ratio   time ratio   outcome')
  for (const r of rows) {
    console.log(
      `${`${(r.bytes / 1024).toFixed(0)} KiB`.padEnd(12)}${r.ms.toFixed(0).padStart(9)}   ${(r.ms / (r.bytes / 1024)).toFixed(2).padStart(6)}   ${(r.bytes / base.bytes).toFixed(1).padStart(10)}   ${(r.ms / base.ms).toFixed(1).padStart(10)}   ${r.outcome}`,
    )
  }
  const last = rows.at(-1)!
  console.log(
    `linearity: time grew ${(last.ms / base.ms).toFixed(1)}x for ${(last.bytes / base.bytes).toFixed(1)}x the size (1.0 would be exactly linear: ${(last.ms / base.ms / (last.bytes / base.bytes)).toFixed(2)})`,
  )

  await writeFile(file, Buffer.alloc(10 * 1024 * 1024, 'x'))
  const big = await timeLoad(file)
  console.log(`10 MiB file: ${big.ms.toFixed(1)} ms, ${big.outcome}`)
} finally {
  await rm(dir, {recursive: true, force: true})
}
