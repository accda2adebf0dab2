import {spawn, type ChildProcess} from 'node:child_process'
import path from 'node:path'
import {createInterface} from 'node:readline'

import {runCli} from '../../support/cli.js'
import {ROOT} from '../../support/paths.js'
import {sandboxEnv} from '../../support/sandbox.js'

export {ROOT}
const sandbox = sandboxEnv()
export const CONTEXT = sandbox.context
export const PROMETHEUS = sandbox.prometheusUrl

/** An ISO timestamp h hours from now, without milliseconds (as people write them in retailops.yaml). */
export function hours(h: number): string {
  return new Date(Date.now() + h * 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z')
}

export {randomName} from '../../support/names.js'

/** Runs the CLI (test/support/cli.ts) with --json; returns exit code and the parsed document. */
export async function cli(args: string[], cwd: string, env: Record<string, string> = {}) {
  return runCli(args, {cwd, env, json: true})
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
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      SHUTDOWN_DELAY_MS: '0',
      SHUTDOWN_TIMEOUT_MS: '2000',
      APP_VERSION: 'prewarm-it',
      ...env,
    },
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
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    )
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
  const checkout = await startService('checkout', {
    INVENTORY_URL: urls.inventory,
    PAYMENTS_URL: urls.payments,
    ORDERS_URL: urls.orders,
  })
  started.push(checkout)
  urls.checkout = checkout.url
  return urls
}
