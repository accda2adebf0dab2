import {isIP} from 'node:net'

import {hostOf} from './loopback.js'

/** `host[:port]` with the host normalised (loopback.ts's hostOf), so `LOCALHOST:5000` and `localhost:5000` compare equal. */
export function normalizeHostPort(hostPort: string): string {
  const text = hostPort
    .trim()
    .toLowerCase()
    .replace(/^https?:\/\//, '')
    .replace(/\/.*$/, '')
  const host = hostOf(text)
  const port = text.startsWith('[')
    ? /\]:(\d+)$/.exec(text)?.[1]
    : isIP(text) === 6
      ? undefined
      : /:(\d+)$/.exec(text)?.[1]
  return `${host.includes(':') ? `[${host}]` : host}${port ? `:${port}` : ''}`
}
