import {spawn, type ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdtemp, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {createInterface} from 'node:readline'
import {fileURLToPath} from 'node:url'

import {execa} from 'execa'

import {loadConfig, type LoadedConfig} from '../../../src/config/load.js'
import type {RunContext} from '../../../src/ui/context.js'
import {RecordingOutput} from '../../../src/ui/output.js'

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
export const CONTEXT = process.env.RETAILOPS_KUBE_CONTEXT ?? 'kwok-retailops'
export const PROMETHEUS = process.env.RETAILOPS_PROMETHEUS_URL ?? 'http://127.0.0.1:9090'

export function sandboxReady(): boolean {
  return Boolean(process.env.KUBECONFIG && process.env.RETAILOPS_K6)
}

export function ctx(): RunContext & {out: RecordingOutput} {
  return {out: new RecordingOutput()}
}

/** An ISO timestamp h hours from now, without milliseconds (as people write them in retailops.yaml). */
export function hours(h: number): string {
  return new Date(Date.now() + h * 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z')
}

export function randomName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`
}

/** Writes retailops.yaml into a temp folder and loads it. */
export async function writeProject(yaml: string): Promise<{dir: string; file: string; load: () => Promise<LoadedConfig>}> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 't-capacity-'))
  const file = path.join(dir, 'retailops.yaml')
  await writeFile(file, yaml)
  return {dir, file, load: () => loadConfig(file)}
}

/** Runs the CLI from the sources (bin/dev.js) with --json; returns exit code and the parsed document. */
export async function cli(args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = await execa(path.join(ROOT, 'bin/dev.js'), [...args, '--json'], {cwd, env: {CI: 'true', ...env}, reject: false, timeout: 280_000})
  let doc: {status: number; result?: any; error?: any; warnings: string[]} | undefined
  try {
    doc = JSON.parse(r.stdout)
  } catch {
    doc = undefined
  }
  return {exitCode: r.exitCode, doc, stdout: r.stdout, stderr: r.stderr}
}

export interface ServiceProc {
  name: string
  url: string
  child: ChildProcess
  stop: () => Promise<void>
}

/** Spawns services/<name>/src/main.ts on 127.0.0.1 with a kernel-chosen port; resolves once it listens. */
export async function startService(name: string, env: Record<string, string> = {}): Promise<ServiceProc> {
  const child = spawn(process.execPath, [`${name}/src/main.ts`], {
    cwd: path.join(ROOT, 'services'),
    env: {PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', SHUTDOWN_DELAY_MS: '0', SHUTDOWN_TIMEOUT_MS: '2000', APP_VERSION: 'prewarm-it', ...env},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const stderr: string[] = []
  child.stderr.setEncoding('utf8').on('data', (c: string) => stderr.push(c))
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not listen within 20 s: ${stderr.join('')}`)), 20_000)
    child.once('exit', (code) => reject(new Error(`${name} exited ${code}: ${stderr.join('')}`)))
    // Every line is read (so the pipe never fills); the "listening" one carries the port.
    createInterface({input: child.stdout}).on('line', (line) => {
      if (!line.includes('"listening"')) return
      try {
        const record = JSON.parse(line) as {msg?: string; port?: number}
        if (record.msg === 'listening') {
          clearTimeout(timer)
          resolve(Number(record.port))
        }
      } catch {
        // not JSON
      }
    })
  })
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`${url}/readyz`).then((r) => r.ok, () => false)
    if (ok) break
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    name,
    url,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
        setTimeout(() => child.kill('SIGKILL'), 5000).unref()
      }),
  }
}

/** The six bundled services as processes, checkout wired to the real inventory, payments and orders; their URLs by name. */
export async function startShop(started: ServiceProc[]): Promise<Record<string, string>> {
  const urls: Record<string, string> = {}
  for (const name of ['inventory', 'payments', 'orders', 'catalog', 'cart']) {
    const s = await startService(name)
    started.push(s)
    urls[name] = s.url
  }
  const checkout = await startService('checkout', {INVENTORY_URL: urls.inventory, PAYMENTS_URL: urls.payments, ORDERS_URL: urls.orders})
  started.push(checkout)
  urls.checkout = checkout.url
  return urls
}
