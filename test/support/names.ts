import {randomBytes} from 'node:crypto'

/** `prefix-` and six random hex digits: a namespace, project or tag no other run uses. */
export function randomName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`
}
