/**
 * `retailops notify test`: one test message to each destination (or the one named), in its real
 * format and through the real delivery (retries, timeouts), so a wrong URL or secret shows up
 * before the first canary aborts at night.
 */
import type {LoadedConfig} from '../config/load.js'
import {ConfigError, NotFoundError} from '../errors/index.js'
import {releaseEvent} from '../ui/events.js'
import type {RunContext} from '../ui/context.js'
import {renderTable} from '../ui/table.js'
import {type DeliveryReport, Notifier, resolveDestinations} from './notifier.js'
import type {EventOrigin} from './formats.js'

export interface NotifyTestResult {
  destinations: DeliveryReport[]
  delivered: number
  failed: number
}

export async function sendTestMessages(
  project: LoadedConfig,
  options: {destination?: string; origin: EventOrigin},
  ctx: RunContext,
): Promise<NotifyTestResult> {
  const config = project.config.notifications
  if (!config)
    throw new ConfigError(
      [{file: project.file, path: 'notifications', message: 'is not configured: there is no destination to test'}],
      {nextSteps: ['Add notifications.destinations and notifications.subscriptions (docs/notifications.md).']},
    )
  const known = Object.keys(config.destinations)
  if (options.destination && !config.destinations[options.destination])
    throw new NotFoundError(`No notification destination "${options.destination}" in ${project.file}.`, {
      nextSteps: [`Name one of: ${known.join(', ')}.`],
      details: {destinations: known},
    })
  const names = options.destination ? [options.destination] : known
  const notifier = new Notifier(project, resolveDestinations(project, names), options.origin, ctx.out)
  const event = releaseEvent({
    type: 'notify.test',
    severity: 'info',
    summary: `A test message from retailops for ${options.origin.project}: this destination receives its release events.`,
    services: [],
    facts: {Subscribed: subscribedEvents(config.subscriptions, names).join('; ') || 'no subscription yet'},
    actions: ['retailops notify test'],
  })
  const task = ctx.out.task(`Sending a test message to ${names.length} destination${names.length === 1 ? '' : 's'}`)
  const destinations = await Promise.all(names.map((name) => notifier.send(name, event)))
  const failed = destinations.filter((d) => !d.delivered).length
  if (failed > 0) task.fail(`${failed} of ${names.length} not delivered`)
  else task.succeed(`${names.length} delivered`)
  return {destinations, delivered: destinations.length - failed, failed}
}

function subscribedEvents(subscriptions: {destinations: string[]; events: string[]}[], names: string[]): string[] {
  return names.map(
    (n) =>
      `${n}: ${[...new Set(subscriptions.filter((s) => s.destinations.includes(n)).flatMap((s) => s.events))].join(', ') || 'none'}`,
  )
}

export function renderNotifyTest(result: NotifyTestResult): string {
  return renderTable(result.destinations, [
    {header: 'DESTINATION', value: (d) => d.destination},
    {header: 'TYPE', value: (d) => d.type},
    {header: 'RESULT', value: (d) => (d.delivered ? 'delivered' : 'failed')},
    {header: 'STATUS', value: (d) => d.status ?? '-'},
    {header: 'ATTEMPTS', value: (d) => d.attempts, align: 'right'},
    {header: 'TIME', value: (d) => `${d.durationMs} ms`, align: 'right'},
    {header: 'ERROR', value: (d) => d.error ?? ''},
  ])
}
