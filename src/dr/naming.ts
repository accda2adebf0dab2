import {createHash, randomBytes} from 'node:crypto'

import {LABEL, MANAGED_BY} from '../kubernetes/labels.js'

/**
 * Everything a drill creates carries the drill prefix and its id, so it can never be mistaken for
 * (or collide with) a source, and a forgotten leftover is recognisable at a glance.
 */
export const DRILL_PREFIX = 'retailops-drill'
export const DRILL_DB_PREFIX = 'retailops_drill_'
export const DRILL_LABEL = 'retailops.dev/drill'
export const DRILL_DATASTORE_LABEL = 'retailops.dev/drill-datastore'
export const MANAGED_BY_SELECTOR = `${LABEL.managedBy}=${MANAGED_BY}`

/** A drill id: UTC time plus 4 random hex digits, e.g. 20260509-120301-7f3a (sortable, DNS-safe). */
export function newDrillId(now = new Date(), random = randomBytes(2).toString('hex')): string {
  const iso = now.toISOString()
  return `${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}-${random}`
}

export function isDrillId(id: string): boolean {
  return /^\d{8}-\d{6}-[0-9a-f]{4}$/.test(id)
}

function shorten(text: string, max: number, separator: string): string {
  if (text.length <= max) return text
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 6)
  return `${text.slice(0, max - hash.length - 1).replace(/[-_]+$/, '')}${separator}${hash}`
}

/** retailops_drill_<id>_<datastore>: a PostgreSQL identifier (at most 63 bytes, lowercase, underscores). */
export function scratchDatabaseName(drillId: string, datastore: string): string {
  const raw = `${DRILL_DB_PREFIX}${drillId}_${datastore}`.toLowerCase().replaceAll(/[^a-z0-9_]/g, '_')
  return shorten(raw, 63, '_')
}

/** retailops-drill-<id>-<datastore>: a DNS label (at most 63 characters). */
export function drillNamespaceName(drillId: string, datastore: string): string {
  const raw = `${DRILL_PREFIX}-${drillId}-${datastore}`.toLowerCase().replaceAll(/[^a-z0-9-]/g, '-')
  return shorten(raw, 63, '-')
}

/** A name for a restored cloud resource: letters, digits and dashes, starting with a letter. */
export function drillResourceName(drillId: string, datastore: string, max = 63): string {
  return shorten(`${DRILL_PREFIX}-${drillId}-${datastore}`.toLowerCase().replaceAll(/[^a-z0-9-]/g, '-'), max, '-')
}

export function isDrillDatabase(name: string): boolean {
  return name.startsWith(DRILL_DB_PREFIX)
}

export function isDrillNamespace(name: string): boolean {
  return name.startsWith(`${DRILL_PREFIX}-`)
}
