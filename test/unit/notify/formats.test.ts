// Each payload against its destination's documented format: Slack Block Kit (text + blocks, the
// per-block limits), the Teams Workflows webhook message (an attachment of contentType
// application/vnd.microsoft.card.adaptive holding an AdaptiveCard), and CloudEvents 1.0 in the
// structured JSON format, whose HMAC the test checks on its own with node:crypto.
import {createHmac, timingSafeEqual} from 'node:crypto'

import {describe, expect, it} from 'vitest'

import {
  cloudEvent,
  cloudEventRequest,
  CLOUDEVENTS_CONTENT_TYPE,
  SIGNATURE_HEADER,
  slackPayload,
  teamsPayload,
} from '../../../src/notify/formats.js'
import {releaseEvent, type ReleaseEvent} from '../../../src/ui/events.js'
import {registerSecret} from '../../../src/ui/secrets.js'

const origin = {project: 'shop', environment: 'prod'}

const aborted: ReleaseEvent = releaseEvent({
  type: 'rollout.aborted',
  severity: 'critical',
  summary: 'The rollout of checkout v2 was aborted: step 2 analysis failed. All traffic is back on v1.',
  services: ['checkout'],
  version: 'v2',
  previousVersion: 'v1',
  namespace: 'shop-prod',
  facts: {Step: '2/3 (analysis)', 'Traffic to new version': '0 %'},
  measurements: [
    {name: 'error-rate', value: 'canary 0.41, stable 0', condition: 'failure if result > 0.05', verdict: 'Failed'},
  ],
  actions: ['retailops rollout history checkout -n shop-prod'],
  at: '2026-12-07T03:00:00.000Z',
})

describe('Slack incoming webhook (Block Kit)', () => {
  it('sends a plain-text fallback and blocks: header, summary, fields, measurements, actions, context', () => {
    const p = slackPayload(aborted, origin)
    expect(p.text).toContain('Rollout aborted: checkout v2')
    expect(p.text).toContain('step 2 analysis failed')
    expect(p.blocks.map((b) => b.type)).toEqual(['header', 'section', 'section', 'section', 'section', 'context'])
    const [header, summary, fields, measured, act, context] = p.blocks as any[]
    expect(header.text).toEqual({type: 'plain_text', text: 'Rollout aborted: checkout v2', emoji: true})
    expect(summary.text.type).toBe('mrkdwn')
    expect(summary.text.text).toMatch(/^:rotating_light: The rollout of checkout v2 was aborted/)
    expect(fields.fields.length).toBeLessThanOrEqual(10)
    for (const f of fields.fields) expect(f.type).toBe('mrkdwn')
    expect(fields.fields.map((f: any) => f.text)).toEqual(
      expect.arrayContaining(['*Service*\ncheckout', '*Version*\nv2', '*Previous version*\nv1', '*Environment*\nprod']),
    )
    expect(measured.text.text).toContain('Failed: error-rate = canary 0.41, stable 0 (failure if result &gt; 0.05)')
    expect(act.text.text).toContain('`retailops rollout history checkout -n shop-prod`')
    expect(context.elements[0]).toEqual({
      type: 'mrkdwn',
      text: 'retailops · rollout.aborted · 2026-12-07T03:00:00.000Z',
    })
  })

  it('keeps within the documented limits (header 150, section text 3000, 10 fields of 2000, 50 blocks)', () => {
    const long = releaseEvent({
      ...aborted,
      summary: 'x'.repeat(5000),
      services: ['s'.repeat(200)],
      facts: Object.fromEntries(Array.from({length: 20}, (_, i) => [`fact ${i}`, 'y'.repeat(3000)])),
    })
    const p = slackPayload(long, origin)
    expect(p.blocks.length).toBeLessThanOrEqual(50)
    const [header, summary, fields] = p.blocks as any[]
    expect(header.text.text.length).toBeLessThanOrEqual(150)
    expect(summary.text.text.length).toBeLessThanOrEqual(3000)
    expect(fields.fields).toHaveLength(10)
    for (const f of fields.fields) expect(f.text.length).toBeLessThanOrEqual(2000)
    expect(p.text.length).toBeLessThanOrEqual(3000)
  })

  it('escapes &, < and > so a value cannot mention @channel or forge a link', () => {
    const p = slackPayload(releaseEvent({...aborted, summary: 'reason <!channel> & <http://x|y>'}), origin)
    expect((p.blocks[1] as any).text.text).toContain('reason &lt;!channel&gt; &amp; &lt;http://x|y&gt;')
  })
})

describe('Teams Workflows webhook (Adaptive Card)', () => {
  it('sends a message with one Adaptive Card attachment', () => {
    const p = teamsPayload(aborted, origin)
    expect(p.type).toBe('message')
    expect(p.attachments).toHaveLength(1)
    const a = p.attachments[0]
    expect(a.contentType).toBe('application/vnd.microsoft.card.adaptive')
    expect(a.contentUrl).toBeNull()
    expect(a.content.$schema).toBe('http://adaptivecards.io/schemas/adaptive-card.json')
    expect(a.content.type).toBe('AdaptiveCard')
    expect(a.content.version).toMatch(/^1\.[0-5]$/)
    const body = a.content.body as any[]
    expect(body[0]).toMatchObject({type: 'TextBlock', text: 'Rollout aborted: checkout v2', color: 'Attention'})
    for (const b of body) expect(['TextBlock', 'FactSet']).toContain(b.type)
    const facts = body.filter((b) => b.type === 'FactSet').flatMap((b) => b.facts)
    for (const f of facts) expect(Object.keys(f).sort()).toEqual(['title', 'value'])
    expect(facts).toEqual(
      expect.arrayContaining([
        {title: 'Service', value: 'checkout'},
        {title: 'error-rate', value: 'canary 0.41, stable 0 (failure if result > 0.05): Failed'},
      ]),
    )
    expect(
      body.some((b) => b.fontType === 'Monospace' && b.text === 'retailops rollout history checkout -n shop-prod'),
    ).toBe(true)
  })
})

describe('generic webhook (CloudEvents 1.0, structured JSON)', () => {
  it('has every required attribute, the JSON data and a reverse-DNS type', () => {
    const e = cloudEvent(aborted, origin, {id: 'fixed-id'})
    expect(e.specversion).toBe('1.0')
    expect(e.id).toBe('fixed-id')
    expect(e.source).toBe('/retailops/shop/prod')
    expect(e.type).toBe('dev.retailops.rollout.aborted')
    expect(e.subject).toBe('checkout')
    expect(e.time).toBe('2026-12-07T03:00:00.000Z')
    expect(new Date(e.time).toISOString()).toBe(e.time)
    expect(e.datacontenttype).toBe('application/json')
    expect(e.data).toMatchObject({type: 'rollout.aborted', services: ['checkout'], version: 'v2', project: 'shop'})
    expect(e.data.measurements?.[0].value).toBe('canary 0.41, stable 0')
    // Attribute names: lower-case letters and digits only (CloudEvents naming convention).
    for (const k of Object.keys(e)) expect(k).toMatch(/^[a-z0-9]+$/)
  })

  it('ids differ between events and the source can be configured', () => {
    expect(cloudEvent(aborted, origin).id).not.toBe(cloudEvent(aborted, origin).id)
    expect(cloudEvent(aborted, origin, {source: 'urn:shop:ci'}).source).toBe('urn:shop:ci')
  })

  it('is sent as application/cloudevents+json with an HMAC-SHA256 of the exact body', () => {
    const secret = 'k3y-for-the-test'
    const r = cloudEventRequest(aborted, origin, {secret})
    expect(r.headers['content-type']).toBe(CLOUDEVENTS_CONTENT_TYPE)
    expect(r.headers['content-type']).toMatch(/^application\/cloudevents\+json/)
    const header = r.headers[SIGNATURE_HEADER]
    expect(header).toMatch(/^sha256=[0-9a-f]{64}$/)
    // The receiver's check, written independently: HMAC over the raw bytes, constant-time compare.
    const expected = createHmac('sha256', secret).update(Buffer.from(r.body, 'utf8')).digest()
    expect(timingSafeEqual(Buffer.from(header.slice(7), 'hex'), expected)).toBe(true)
    const other = createHmac('sha256', 'another key').update(r.body).digest()
    expect(timingSafeEqual(Buffer.from(header.slice(7), 'hex'), other)).toBe(false)
    expect(JSON.parse(r.body).specversion).toBe('1.0')
  })

  it('has no signature header without a secret', () => {
    expect(cloudEventRequest(aborted, origin, {}).headers[SIGNATURE_HEADER]).toBeUndefined()
  })
})

describe('secrets', () => {
  it('a secret the CLI knows is masked in every format', () => {
    registerSecret('hunter2-token-value')
    const leaky = releaseEvent({...aborted, summary: 'failed with hunter2-token-value in the URL'})
    for (const body of [
      JSON.stringify(slackPayload(leaky, origin)),
      JSON.stringify(teamsPayload(leaky, origin)),
      cloudEventRequest(leaky, origin, {}).body,
    ])
      expect(body).not.toContain('hunter2-token-value')
  })
})
