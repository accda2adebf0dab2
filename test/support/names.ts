import {randomBytes} from 'node:crypto'

/** Six random hex digits: what makes a name no other run (or parallel pipeline) uses. */
export function randomSuffix(): string {
  return randomBytes(3).toString('hex')
}

/** `prefix-` and six random hex digits: a namespace, project, repository or tag of this run only. */
export function randomName(prefix: string): string {
  return `${prefix}-${randomSuffix()}`
}
