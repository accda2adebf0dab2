// Shared by the services unit tests: start services in this process on 127.0.0.1 with a port
// the kernel picks, silence their logs, and stop them all after each test.

import {afterEach} from 'vitest'
import type {Env} from '../../../services/lib/config.ts'
import {silentLogger} from '../../../services/lib/log.ts'
import type {Service, ServiceDeps} from '../../../services/lib/service.ts'

export {json, sample} from './http.ts'

const running: Service[] = []

afterEach(async () => {
  await Promise.all(running.splice(0).map((service) => service.stop('test done')))
})

export type AppFactory<D extends ServiceDeps> = (env: Env, deps: D) => Service

/** Starts a service from its createApp on loopback; it is stopped after the test. */
export async function launch<D extends ServiceDeps>(
  createApp: AppFactory<D>,
  env: Env = {},
  deps: Partial<D> = {},
): Promise<{service: Service; url: string}> {
  const service = createApp({HOST: '127.0.0.1', PORT: '0', ...env}, {log: silentLogger, ...deps} as D)
  running.push(service)
  const {url} = await service.start()
  return {service, url}
}
