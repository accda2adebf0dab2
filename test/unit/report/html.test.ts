import {describe, expect, it} from 'vitest'

import {
  badge,
  barChart,
  html,
  kpis,
  lineChart,
  meter,
  niceTicks,
  raw,
  renderPage,
  table,
  timeline,
} from '../../../src/report/index.js'

describe('report shell', () => {
  it('escapes interpolated text and passes trusted markup through', () => {
    const name = '<script>alert("x")</script>'
    expect(html`<td>${name}</td>`.value).toBe('<td>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</td>')
    expect(html`<p>${raw('<b>ok</b>')}${[html`<i>${'&'}</i>`, 'y']}</p>`.value).toBe('<p><b>ok</b><i>&amp;</i>y</p>')
  })

  it('renders one self-contained page: inline CSS, no scripts, nothing fetched from elsewhere', () => {
    const page = renderPage({
      title: 'Drill <1>',
      generatedAt: new Date('2026-11-25T10:00:00.000Z'),
      meta: [{label: 'Cluster', value: 'kwok'}],
      sections: [
        {title: 'Summary', body: [kpis([{label: 'RTO', value: '12m', tone: 'good'}]), badge('met', 'good')]},
        {
          title: 'Phases',
          body: timeline({
            lanes: [
              {
                label: 'restore',
                spans: [{start: 0, end: 60_000, tone: 'info', label: 'restore'}],
                markers: [{at: 30_000, label: 'RPO', tone: 'warn'}],
              },
            ],
          }),
        },
        {
          title: 'Rows',
          body: table([{a: 1}, {a: 2}, {a: 3}], [{header: 'A', value: (r) => r.a, numeric: true}], {limit: 2}),
        },
      ],
    })
    expect(page.startsWith('<!doctype html>')).toBe(true)
    expect(page).toContain('<title>Drill &lt;1&gt;</title>')
    expect(page).toContain('<style>')
    expect(page).not.toMatch(/<script|<link|<img|@import|url\(/i)
    expect(page).not.toMatch(/(src|href)="(https?:)?\/\//)
    expect(page).toContain('Generated: <b>2026-11-25T10:00:00Z</b>')
    expect(page).toContain('href="#phases"')
    expect(page).toContain('… and 1 more rows')
    expect(page.match(/<svg /g)!.length).toBeGreaterThanOrEqual(1)
  })

  it('draws bars proportionally and folds the tail into "others"', () => {
    const svg = barChart({
      bars: [
        {label: 'a', value: 10},
        {label: 'b', value: 5},
        {label: 'c', value: 1},
        {label: 'd', value: 1},
      ],
      limit: 3,
      width: 500,
    }).value
    const widths = [...svg.matchAll(/<rect[^>]* width="([\d.]+)"/g)].map((m) => Number(m[1]))
    expect(widths[0] / widths[1]).toBeCloseTo(2, 5)
    expect(svg).toContain('2 others')
  })

  it('breaks a line at missing points instead of drawing them as zero', () => {
    const svg = lineChart({
      series: [
        {
          label: 's',
          tone: 'info',
          points: [
            [0, 1],
            [1, 2],
            [2, null],
            [3, 1],
          ],
        },
      ],
      thresholds: [{label: 'page', value: 14.4, tone: 'bad'}],
    }).value
    const d = /<path class="stroke-info"[^>]* d="([^"]+)"/.exec(svg)![1]
    expect(d.match(/M/g)!.length).toBe(2)
    expect(lineChart({series: [{label: 's', tone: 'info', points: [[0, null]]}]}).value).toContain('no data')
  })

  it('meters show no data as such', () => {
    expect(meter({value: null, tone: 'good'}).value).toContain('no data')
    expect(meter({value: -0.5, tone: 'bad'}).value).toContain('width="0.0"')
  })

  it('picks round axis ticks', () => {
    expect(niceTicks(9.3, 5)).toEqual([0, 2, 4, 6, 8, 10])
    expect(niceTicks(0)).toEqual([0, 1])
  })
})
