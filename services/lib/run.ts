// The process around a service: start it, turn SIGTERM/SIGINT into a graceful shutdown, and
// exit 0 when every in-flight request was answered (1 when the drain deadline cut some, or
// when the service could not start).

import {ConfigError} from './config.ts'
import {createLogger} from './log.ts'
import type {Service} from './service.ts'

export async function runService(name: string, build: () => Service): Promise<void> {
  let service: Service
  try {
    service = build()
  } catch (error) {
    const log = createLogger({fields: {service: name}})
    if (error instanceof ConfigError) log.error('invalid configuration', {error: error.message})
    else log.error('could not create service', {err: error})
    process.exit(1)
  }

  const {log} = service
  const shutdown = (signal: string): void => {
    service.stop(signal).then(
      (result) => process.exit(result.drained ? 0 : 1),
      (error: unknown) => {
        log.error('shutdown failed', {err: error})
        process.exit(1)
      },
    )
  }
  process.once('SIGTERM', () => shutdown('SIGTERM'))
  process.once('SIGINT', () => shutdown('SIGINT'))
  process.on('unhandledRejection', (reason) => {
    log.error('unhandled rejection', {err: reason})
    process.exit(1)
  })

  try {
    await service.start()
  } catch (error) {
    log.error('could not start', {err: error})
    process.exit(1)
  }
}
