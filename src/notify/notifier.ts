/**
 * Delivers release events (src/ui/events.ts) to the destinations of retailops.yaml's
 * `notifications`. Wired once in the command base: every event a command's engines raise through
 * ctx.out.event goes to the destinations of every subscription it matches, in the background,
 * while the release goes on; the command waits for what is still pending before it exits, at most
 * the delivery deadline. A message not delivered is a warning (terminal and --json), never an exit code.
 */
import type {LoadedConfig} from '../config/load.js'
import type {NotificationDestinationConfig, NotificationsConfig} from '../config/schema.js'
import {eventPatternMatches} from '../config/vocabulary.js'
import {parseDuration} from '../config/duration.js'
import {isLoopbackHost} from '../config/loopback.js'
import {envReferenceName} from '../config/secret-ref.js'
import {ConfigError, type ConfigIssue} from '../errors/index.js'
import type {ReleaseEvent, ReleaseEventType} from '../ui/events.js'
import type {Output} from '../ui/output.js'
import {registerSecret} from '../ui/secrets.js'
import {deliver, type DeliveryOutcome, type DeliveryPolicy} from './deliver.js'
import {
  cloudEventRequest,
  eventLine,
  type EventOrigin,
  type OutgoingRequest,
  slackRequest,
  teamsRequest,
} from './formats.js'

export interface ResolvedDestination {
  name: string
  type: NotificationDestinationConfig['type']
  url: string
  secret?: string
  source?: string
}

export interface DeliveryReport extends DeliveryOutcome {
  destination: string
  type: ResolvedDestination['type']
  event: ReleaseEventType
}

type Subscription = NotificationsConfig['subscriptions'][number]

/** Destinations a subscription sends `event` to (once each). */
export function destinationsFor(
  config: NotificationsConfig,
  event: Pick<ReleaseEvent, 'type' | 'services'>,
  tiers: Record<string, string>,
): string[] {
  const names = new Set<string>()
  for (const sub of config.subscriptions)
    if (subscribed(sub, event, tiers)) for (const d of sub.destinations) names.add(d)
  return [...names]
}

function subscribed(sub: Subscription, event: Pick<ReleaseEvent, 'type' | 'services'>, tiers: Record<string, string>) {
  if (!sub.events.some((p) => eventPatternMatches(p, event.type))) return false
  if (!sub.services && !sub.tiers) return true
  return event.services.some(
    (s) => Boolean(sub.services?.includes(s)) || Boolean(tiers[s] && sub.tiers?.some((t) => t === tiers[s])),
  )
}

/** The destinations a command that raises `events` may send to: the ones it must be able to reach. */
export function destinationsOfEvents(config: NotificationsConfig, events: readonly ReleaseEventType[]): string[] {
  const names = new Set<string>()
  for (const sub of config.subscriptions)
    if (sub.events.some((p) => events.some((e) => eventPatternMatches(p, e))))
      for (const d of sub.destinations) names.add(d)
  return [...names]
}

/**
 * Reads the destinations' URLs and secrets from their variables, checked before the command
 * changes anything: a variable not set, or a URL that is not one (or plain HTTP to anything but
 * loopback), is CONFIG (exit 3) naming the key and the variable. The values are masked in all output.
 */
export function resolveDestinations(project: LoadedConfig, names: string[]): Map<string, ResolvedDestination> {
  const config = project.config.notifications
  const resolved = new Map<string, ResolvedDestination>()
  const issues: ConfigIssue[] = []
  const fixes: string[] = []
  for (const name of names) {
    const d = config?.destinations[name]
    if (!d) continue
    const read = (key: 'url' | 'secret', reference: string | undefined): string | undefined => {
      if (reference === undefined) return undefined
      const variable = envReferenceName(reference)!
      const value = process.env[variable]?.trim()
      if (!value) {
        issues.push({
          file: project.file,
          path: `notifications.destinations.${name}.${key}`,
          message: `comes from ${reference}, but ${variable} is ${process.env[variable] === undefined ? 'not set' : 'empty'}`,
        })
        fixes.push(
          `Set ${variable} to the ${d.type} ${key === 'url' ? 'webhook URL' : 'signing secret'} (in CI: a secret mapped to ${variable}).`,
        )
        return undefined
      }
      registerSecret(value)
      return value
    }
    const url = read('url', d.url)
    const secret = d.type === 'webhook' ? read('secret', d.secret) : undefined
    if (url === undefined) continue
    const problem = urlProblem(url)
    if (problem) {
      issues.push({
        file: project.file,
        path: `notifications.destinations.${name}.url`,
        message: `the value of ${envReferenceName(d.url)} ${problem}`,
      })
      fixes.push(`Set ${envReferenceName(d.url)} to the destination's https:// URL.`)
      continue
    }
    resolved.set(name, {name, type: d.type, url, secret, source: d.type === 'webhook' ? d.source : undefined})
  }
  if (issues.length > 0)
    throw new ConfigError(issues, {
      nextSteps: [...fixes, 'Nothing was sent and nothing was changed.'],
      details: {notifications: true},
    })
  return resolved
}

function urlProblem(value: string): string | undefined {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return 'is not a URL'
  }
  if (url.protocol === 'https:') return undefined
  if (url.protocol === 'http:')
    return isLoopbackHost(url.host) ? undefined : 'is plain http:// to a host that is not loopback (use https://)'
  return `has the scheme ${url.protocol} (use https://)`
}

export function deliveryPolicy(config: NotificationsConfig): DeliveryPolicy {
  return {
    attempts: config.delivery.attempts,
    timeoutMs: parseDuration(config.delivery.timeout)!,
    backoffMs: parseDuration(config.delivery.backoff)!,
    deadlineMs: parseDuration(config.delivery.deadline)!,
  }
}

export function requestFor(
  destination: ResolvedDestination,
  event: ReleaseEvent,
  origin: EventOrigin,
): OutgoingRequest {
  switch (destination.type) {
    case 'slack':
      return slackRequest(event, origin)
    case 'teams':
      return teamsRequest(event, origin)
    case 'webhook':
      return cloudEventRequest(event, origin, {source: destination.source, secret: destination.secret})
  }
}

/** Time a command waits at its end beyond the delivery deadline (for answers already on their way). */
const FLUSH_GRACE_MS = 500

export class Notifier {
  readonly deliveries: DeliveryReport[] = []
  private readonly pending = new Set<Promise<DeliveryReport>>()
  private readonly tiers: Record<string, string>
  readonly policy: DeliveryPolicy

  constructor(
    private readonly project: LoadedConfig,
    private readonly resolved: Map<string, ResolvedDestination>,
    readonly origin: EventOrigin,
    private readonly out: Output,
  ) {
    this.tiers = Object.fromEntries(Object.entries(project.config.services).map(([s, c]) => [s, c.tier]))
    this.policy = deliveryPolicy(project.config.notifications!)
  }

  get config(): NotificationsConfig {
    return this.project.config.notifications!
  }

  /** Sends the event to every destination subscribed to it, in the background. */
  handle(event: ReleaseEvent): void {
    for (const name of destinationsFor(this.config, event, this.tiers)) {
      const sending = this.send(name, event).finally(() => this.pending.delete(sending))
      this.pending.add(sending)
    }
  }

  /** Sends one message to one destination; a failure is a warning and a report, never thrown. */
  async send(name: string, event: ReleaseEvent): Promise<DeliveryReport> {
    let destination = this.resolved.get(name)
    const type = this.config.destinations[name]?.type ?? 'webhook'
    const undelivered = (error: string) =>
      this.report(
        {destination: name, type, event: event.type, delivered: false, attempts: 0, durationMs: 0, error},
        event,
      )
    if (!destination) {
      // Not checked up front (the command did not expect to raise this event): checked now, and a problem is a warning.
      try {
        destination = resolveDestinations(this.project, [name]).get(name)
      } catch (error) {
        return undelivered((error as Error).message.replace(/^Invalid configuration:\s*/, ''))
      }
      if (!destination) return undelivered('no such destination')
      this.resolved.set(name, destination)
    }
    const outcome = await deliver(destination.url, requestFor(destination, event, this.origin), this.policy)
    return this.report({destination: name, type, event: event.type, ...outcome}, event)
  }

  private report(report: DeliveryReport, event: ReleaseEvent): DeliveryReport {
    this.deliveries.push(report)
    if (report.delivered)
      this.out.debug(
        `notification ${eventLine(event)} delivered to ${report.destination} (${report.type}, ${report.attempts} attempt${report.attempts === 1 ? '' : 's'})`,
      )
    else
      this.out.warn(
        `notification ${eventLine(event)} to ${report.destination} (${report.type}) not delivered after ${report.attempts} attempt${report.attempts === 1 ? '' : 's'}: ${report.error}`,
      )
    return report
  }

  /** Waits for pending deliveries, at most the delivery deadline (and a little grace). */
  async flush(): Promise<void> {
    if (this.pending.size === 0) return
    let timer: NodeJS.Timeout | undefined
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.policy.deadlineMs + FLUSH_GRACE_MS)
    })
    await Promise.race([Promise.allSettled([...this.pending]).then(() => undefined), bound])
    clearTimeout(timer)
    if (this.pending.size > 0)
      this.out.warn(
        `${this.pending.size} notification${this.pending.size === 1 ? '' : 's'} still unanswered at exit: not waited for`,
      )
  }
}

/**
 * The notifier of a command, or none when retailops.yaml has no notifications. Destinations the
 * command's events may go to are resolved now (CONFIG, exit 3, before anything is changed).
 */
export function commandNotifier(
  project: LoadedConfig,
  events: readonly ReleaseEventType[],
  origin: EventOrigin,
  out: Output,
): Notifier | undefined {
  const config = project.config.notifications
  if (!config) return undefined
  const resolved = resolveDestinations(project, destinationsOfEvents(config, events))
  return new Notifier(project, resolved, origin, out)
}
