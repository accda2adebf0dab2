/**
 * The three payloads a release event is sent as, each in its destination's documented format
 * (docs/notifications.md cites them):
 * - Slack incoming webhook: `text` (the fallback shown in notifications) plus Block Kit `blocks`.
 * - Teams Workflows webhook: a `message` with one attachment of contentType
 *   application/vnd.microsoft.card.adaptive holding an AdaptiveCard.
 * - Generic webhook: one CloudEvents 1.0 event in the structured JSON format
 *   (application/cloudevents+json), signed with HMAC-SHA256 over the exact body.
 */
import {createHmac, randomUUID} from 'node:crypto'

import {redact, redactDeep} from '../ui/secrets.js'
import type {EventSeverity, ReleaseEvent} from '../ui/events.js'

/** Where the events come from: the project (and environment) named in every message. */
export interface EventOrigin {
  project: string
  environment?: string
}

const TITLES: Record<ReleaseEvent['type'], string> = {
  'rollout.started': 'Rollout started',
  'rollout.paused': 'Rollout paused',
  'rollout.step-passed': 'Rollout step passed',
  'rollout.analysis-failed': 'Analysis failed',
  'rollout.aborted': 'Rollout aborted',
  'rollout.promoted': 'Rollout promoted',
  'rollout.timed-out': 'Rollout timed out',
  'release.refused.freeze': 'Release refused: freeze window',
  'release.refused.error-budget': 'Release refused: error budget',
  'release.refused.supply-chain': 'Release refused: supply-chain policy',
  'prewarm.applied': 'Pre-warm applied',
  'prewarm.warmup-failed': 'Warm-up failed',
  'prewarm.restored': 'Pre-warm restored',
  'drill.passed': 'DR drill passed',
  'drill.missed': 'DR drill missed its targets',
  'slo.gate-closed': 'SLO gate closed',
  'notify.test': 'Test message',
}

const EMOJI: Record<EventSeverity, string> = {
  info: ':information_source:',
  success: ':white_check_mark:',
  warning: ':warning:',
  critical: ':rotating_light:',
}

/** Adaptive Card TextBlock colours (https://adaptivecards.io/explorer/TextBlock.html). */
const CARD_COLOUR: Record<EventSeverity, string> = {
  info: 'Accent',
  success: 'Good',
  warning: 'Warning',
  critical: 'Attention',
}

/** Title of a message: what happened and to what. */
export function eventTitle(event: ReleaseEvent): string {
  const what = TITLES[event.type]
  const to = event.services.length > 0 ? `: ${event.services.join(', ')}` : ''
  const version = event.version ? ` ${event.version}` : ''
  return `${what}${to}${version}`
}

/** The facts every format shows, as title/value pairs (empty values left out). */
export function eventFacts(event: ReleaseEvent, origin: EventOrigin): {title: string; value: string}[] {
  const facts: [string, string | undefined][] = [
    ['Project', origin.project],
    ['Environment', origin.environment],
    ['Namespace', event.namespace],
    ['Service', event.services.join(', ') || undefined],
    ['Version', event.version],
    ['Previous version', event.previousVersion],
    ...Object.entries(event.facts ?? {}),
  ]
  return facts.filter((f): f is [string, string] => Boolean(f[1])).map(([title, value]) => ({title, value}))
}

function measurementLine(m: NonNullable<ReleaseEvent['measurements']>[number]): string {
  const condition = m.condition ? ` (${m.condition})` : ''
  const verdict = m.verdict ? `${m.verdict}: ` : ''
  return `${verdict}${m.name} = ${m.value}${condition}`
}

/** Slack text objects are limited (3000 characters a section, 150 a header): long values are cut, not refused. */
function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`
}

/** Slack mrkdwn escapes only &, < and > (https://api.slack.com/reference/surfaces/formatting#escaping). */
function slackEscape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
}

export interface SlackPayload {
  text: string
  blocks: Record<string, unknown>[]
}

export function slackPayload(event: ReleaseEvent, origin: EventOrigin): SlackPayload {
  const title = eventTitle(event)
  const blocks: Record<string, unknown>[] = [
    {type: 'header', text: {type: 'plain_text', text: cut(title, 150), emoji: true}},
    {
      type: 'section',
      text: {type: 'mrkdwn', text: cut(`${EMOJI[event.severity]} ${slackEscape(event.summary)}`, 3000)},
    },
  ]
  // A section holds at most 10 fields of at most 2000 characters each.
  const facts = eventFacts(event, origin).slice(0, 10)
  if (facts.length > 0)
    blocks.push({
      type: 'section',
      fields: facts.map((f) => ({
        type: 'mrkdwn',
        text: cut(`*${slackEscape(f.title)}*\n${slackEscape(f.value)}`, 2000),
      })),
    })
  if (event.measurements?.length)
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: cut(
          `*Measured*\n${event.measurements.map((m) => `• ${slackEscape(measurementLine(m))}`).join('\n')}`,
          3000,
        ),
      },
    })
  if (event.actions?.length)
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: cut(`*Act on it*\n${event.actions.map((a) => `\`${slackEscape(a)}\``).join('\n')}`, 3000),
      },
    })
  blocks.push({
    type: 'context',
    elements: [{type: 'mrkdwn', text: cut(`retailops · ${event.type} · ${event.at}`, 3000)}],
  })
  return redactDeep({text: cut(`${title}: ${event.summary}`, 3000), blocks})
}

export interface TeamsPayload {
  type: 'message'
  attachments: {contentType: 'application/vnd.microsoft.card.adaptive'; contentUrl: null; content: AdaptiveCard}[]
}

export interface AdaptiveCard {
  $schema: string
  type: 'AdaptiveCard'
  version: string
  body: Record<string, unknown>[]
  msteams?: {width: 'Full'}
}

export const ADAPTIVE_CARD_SCHEMA = 'http://adaptivecards.io/schemas/adaptive-card.json'
/** The Adaptive Card version Teams renders for incoming webhooks and Workflows (1.5 is not shown on every client). */
export const ADAPTIVE_CARD_VERSION = '1.4'

export function teamsPayload(event: ReleaseEvent, origin: EventOrigin): TeamsPayload {
  const body: Record<string, unknown>[] = [
    {
      type: 'TextBlock',
      text: eventTitle(event),
      size: 'Large',
      weight: 'Bolder',
      color: CARD_COLOUR[event.severity],
      wrap: true,
    },
    {type: 'TextBlock', text: event.summary, wrap: true},
  ]
  const facts = eventFacts(event, origin)
  if (facts.length > 0) body.push({type: 'FactSet', facts})
  if (event.measurements?.length) {
    body.push({type: 'TextBlock', text: 'Measured', weight: 'Bolder', wrap: true, spacing: 'Medium'})
    body.push({
      type: 'FactSet',
      facts: event.measurements.map((m) => ({
        title: m.name,
        value: `${m.value}${m.condition ? ` (${m.condition})` : ''}${m.verdict ? `: ${m.verdict}` : ''}`,
      })),
    })
  }
  if (event.actions?.length) {
    body.push({type: 'TextBlock', text: 'Act on it', weight: 'Bolder', wrap: true, spacing: 'Medium'})
    for (const a of event.actions) body.push({type: 'TextBlock', text: a, fontType: 'Monospace', wrap: true})
  }
  body.push({
    type: 'TextBlock',
    text: `retailops · ${event.type} · ${event.at}`,
    isSubtle: true,
    size: 'Small',
    wrap: true,
  })
  return redactDeep({
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: ADAPTIVE_CARD_SCHEMA,
          type: 'AdaptiveCard',
          version: ADAPTIVE_CARD_VERSION,
          body,
          msteams: {width: 'Full'},
        },
      },
    ],
  })
}

/** The CloudEvents `type` of a release event: reverse-DNS prefixed, as the spec recommends. */
export function cloudEventType(event: ReleaseEvent): string {
  return `dev.retailops.${event.type}`
}

export interface CloudEvent {
  specversion: '1.0'
  id: string
  source: string
  type: string
  subject?: string
  time: string
  datacontenttype: 'application/json'
  data: ReleaseEvent & {project: string; environment?: string}
}

export function cloudEvent(
  event: ReleaseEvent,
  origin: EventOrigin,
  options: {source?: string; id?: string} = {},
): CloudEvent {
  return redactDeep({
    specversion: '1.0',
    id: options.id ?? randomUUID(),
    source: options.source ?? `/retailops/${origin.project}${origin.environment ? `/${origin.environment}` : ''}`,
    type: cloudEventType(event),
    ...(event.services.length > 0 ? {subject: event.services.join(',')} : {}),
    time: event.at,
    datacontenttype: 'application/json',
    data: {...event, project: origin.project, ...(origin.environment ? {environment: origin.environment} : {})},
  })
}

export const SIGNATURE_HEADER = 'x-retailops-signature'
export const CLOUDEVENTS_CONTENT_TYPE = 'application/cloudevents+json; charset=utf-8'

/** `sha256=<hex>`: HMAC-SHA256 of the exact bytes sent, keyed with the destination's secret. */
export function signature(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`
}

/** A request ready to send: the body is final (the signature covers these exact bytes). */
export interface OutgoingRequest {
  headers: Record<string, string>
  body: string
}

export function slackRequest(event: ReleaseEvent, origin: EventOrigin): OutgoingRequest {
  return {headers: {'content-type': 'application/json'}, body: JSON.stringify(slackPayload(event, origin))}
}

export function teamsRequest(event: ReleaseEvent, origin: EventOrigin): OutgoingRequest {
  return {headers: {'content-type': 'application/json'}, body: JSON.stringify(teamsPayload(event, origin))}
}

export function cloudEventRequest(
  event: ReleaseEvent,
  origin: EventOrigin,
  options: {source?: string; secret?: string},
): OutgoingRequest {
  const body = JSON.stringify(cloudEvent(event, origin, options))
  return {
    headers: {
      'content-type': CLOUDEVENTS_CONTENT_TYPE,
      ...(options.secret ? {[SIGNATURE_HEADER]: signature(body, options.secret)} : {}),
    },
    body,
  }
}

/** The plain-text line a failed delivery's warning quotes (no secret: the text is masked like all output). */
export function eventLine(event: ReleaseEvent): string {
  return redact(`${event.type}${event.services.length > 0 ? ` (${event.services.join(', ')})` : ''}`)
}
