/**
 * The release events of a restore drill (src/ui/events.ts): passed, or missed its targets (an RTO
 * or RPO over target, or a validation that failed), with each datastore's measured RTO and RPO
 * against its target and the commands to look closer.
 */
import {formatDuration} from '../config/duration.js'
import type {EventMeasurement, RaisedEvent} from '../ui/events.js'
import type {DrillRecord, ObjectiveMeasurement} from './types.js'

function objective(m: ObjectiveMeasurement): string {
  return m.actualMs === undefined ? `not measured (${m.detail})` : formatDuration(m.actualMs)
}

/** undefined for a drill that neither passed nor missed (interrupted, or an error before any measurement). */
export function drillEvent(record: DrillRecord): RaisedEvent | undefined {
  const passed = record.status === 'passed'
  if (!passed && record.status !== 'target-missed' && record.status !== 'validation-failed') return undefined
  const measurements: EventMeasurement[] = record.datastores.flatMap((d) => [
    {name: `${d.name} RTO`, value: objective(d.rto), condition: `target ${d.rto.target}`, verdict: d.rto.status},
    {name: `${d.name} RPO`, value: objective(d.rpo), condition: `target ${d.rpo.target}`, verdict: d.rpo.status},
    ...d.validations
      .filter((v) => !v.passed)
      .map((v) => ({name: `${d.name} validation ${v.name}`, value: String(v.value ?? 'no value'), verdict: 'failed'})),
  ])
  for (const c of record.recoverability.filter((x) => x.status === 'fail'))
    measurements.push({name: `${c.service} ${c.kind} ${c.subject}`, value: c.detail, verdict: 'failed'})
  const missed = record.datastores.filter((d) => d.status !== 'passed').map((d) => d.name)
  return {
    type: passed ? 'drill.passed' : 'drill.missed',
    severity: passed ? 'success' : 'critical',
    summary: passed
      ? `The restore drill ${record.id} of ${record.environment} passed: ${record.datastores.length} datastore${record.datastores.length === 1 ? '' : 's'} restored, validated and within RTO and RPO.`
      : `The restore drill ${record.id} of ${record.environment} ${record.status === 'validation-failed' ? 'failed validation' : 'missed its targets'}${missed.length ? ` (${missed.join(', ')})` : ''}.`,
    services: [...new Set(record.datastores.flatMap((d) => (d.service ? [d.service] : [])))],
    facts: {
      Drill: record.id,
      Environment: record.environment,
      Took: formatDuration(record.durationMs),
      Report: record.files.html,
    },
    measurements,
    actions: [`retailops dr history -e ${record.environment}`, `retailops dr plan -e ${record.environment}`],
  }
}
