/**
 * Inline SVG charts for the HTML reports: horizontal (stacked) bars, a line chart with threshold
 * lines, a timeline of spans and markers (DR drill phases, SLO burn periods) and a meter.
 * Plain SVG with CSS classes from html.ts: no scripts, so the file renders anywhere, prints,
 * and a headless browser can screenshot it.
 */
import {escapeHtml, Html, html, legend, raw, type Tone} from './html.js'

const fmtDefault = (n: number) =>
  Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(2)

function figure(title: string | undefined, svg: string, extra?: Html): Html {
  return html`<figure>${title ? html`<figcaption>${title}</figcaption>` : ''}${extra ?? ''}${raw(svg)}</figure>`
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

/** Round numbers for an axis: 0, step, 2·step … ≥ max. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1]
  const raw = max / count
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude
  const ticks: number[] = []
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)))
  return ticks
}

export interface BarSegment {
  label: string
  value: number
  tone: Tone
}

export interface Bar {
  label: string
  /** A single value, or segments stacked left to right. */
  value?: number
  segments?: BarSegment[]
  tone?: Tone
  /** Text after the bar; default the formatted total. */
  note?: string
}

export interface BarChartOptions {
  title?: string
  bars: Bar[]
  format?: (n: number) => string
  width?: number
  /** Bars after this many are summed into one "other" bar. */
  limit?: number
}

export function barChart(options: BarChartOptions): Html {
  const fmt = options.format ?? fmtDefault
  let bars = options.bars
  if (options.limit !== undefined && bars.length > options.limit) {
    const rest = bars.slice(options.limit - 1)
    const total = rest.reduce((s, b) => s + barTotal(b), 0)
    bars = [...bars.slice(0, options.limit - 1), {label: `${rest.length} others`, value: total, tone: 'muted'}]
  }
  const width = options.width ?? 720
  const labelW = 170
  const notes = bars.map((b) => b.note ?? fmt(barTotal(b)))
  const noteW = Math.min(280, Math.max(60, Math.max(0, ...notes.map((n) => n.length)) * 6.6 + 12))
  const rowH = 22
  const top = 6
  const plotW = width - labelW - noteW
  const max = Math.max(0, ...bars.map(barTotal))
  const height = top + bars.length * rowH + 22
  const scale = (v: number) => (max > 0 ? (Math.max(0, v) / max) * plotW : 0)
  const parts: string[] = []
  for (const t of niceTicks(max, 4)) {
    if (t > max * 1.001 && max > 0) continue
    const x = labelW + scale(t)
    parts.push(`<line class="grid" x1="${x}" y1="${top}" x2="${x}" y2="${top + bars.length * rowH}"/>`)
    parts.push(`<text class="dim" x="${x}" y="${height - 6}" text-anchor="middle">${escapeHtml(fmt(t))}</text>`)
  }
  bars.forEach((bar, i) => {
    const y = top + i * rowH
    parts.push(
      `<text x="${labelW - 8}" y="${y + 15}" text-anchor="end">${escapeHtml(truncate(bar.label, 24))}<title>${escapeHtml(bar.label)}</title></text>`,
    )
    const segments = bar.segments ?? [{label: bar.label, value: bar.value ?? 0, tone: bar.tone ?? 'info'}]
    let x = labelW
    for (const seg of segments) {
      const w = scale(seg.value)
      if (w > 0)
        parts.push(
          `<rect class="fill-${seg.tone}" x="${x.toFixed(2)}" y="${y + 4}" width="${Math.max(w, 1).toFixed(2)}" height="${rowH - 8}" rx="2"><title>${escapeHtml(`${bar.label} · ${seg.label}: ${fmt(seg.value)}`)}</title></rect>`,
        )
      x += w
    }
    parts.push(
      `<text class="dim" x="${(x + 6).toFixed(2)}" y="${y + 15}">${escapeHtml(bar.note ?? fmt(barTotal(bar)))}</text>`,
    )
  })
  parts.push(`<line class="axis" x1="${labelW}" y1="${top}" x2="${labelW}" y2="${top + bars.length * rowH}"/>`)
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(options.title ?? 'bar chart')}">${parts.join('')}</svg>`
  const seen = new Map<string, Tone>()
  for (const b of bars) for (const s of b.segments ?? []) seen.set(s.label, s.tone)
  return figure(
    options.title,
    svg,
    seen.size > 1 ? legend([...seen].map(([label, tone]) => ({label, tone}))) : undefined,
  )
}

function barTotal(bar: Bar): number {
  return bar.segments ? bar.segments.reduce((s, x) => s + Math.max(0, x.value), 0) : Math.max(0, bar.value ?? 0)
}

export interface LineSeries {
  label: string
  tone: Tone
  /** [epoch ms, value]; null values break the line (missing data stays visibly missing). */
  points: [number, number | null][]
}

export interface LineChartOptions {
  title?: string
  series: LineSeries[]
  thresholds?: {label: string; value: number; tone: Tone}[]
  yFormat?: (n: number) => string
  xFormat?: (ms: number) => string
  width?: number
  height?: number
  /** Fixed y maximum; default the data's (and thresholds') maximum. */
  yMax?: number
}

export function lineChart(options: LineChartOptions): Html {
  const width = options.width ?? 720
  const height = options.height ?? 220
  const left = 56
  const right = 12
  const top = 10
  const bottom = 26
  const fmtY = options.yFormat ?? fmtDefault
  const fmtX = options.xFormat ?? ((ms: number) => new Date(ms).toISOString().slice(5, 16).replace('T', ' '))
  const xs = options.series.flatMap((s) => s.points.map((p) => p[0]))
  const ys = options.series.flatMap((s) =>
    s.points.map((p) => p[1]).filter((v): v is number => v !== null && Number.isFinite(v)),
  )
  const x0 = Math.min(...xs)
  const x1 = Math.max(...xs)
  const yMax = options.yMax ?? Math.max(0, ...ys, ...(options.thresholds ?? []).map((t) => t.value))
  const ticks = niceTicks(yMax || 1, 4)
  const yTop = ticks.at(-1) ?? 1
  const plotW = width - left - right
  const plotH = height - top - bottom
  const sx = (t: number) => left + (x1 > x0 ? ((t - x0) / (x1 - x0)) * plotW : plotW / 2)
  const sy = (v: number) => top + plotH - (Math.min(v, yTop) / yTop) * plotH
  const parts: string[] = []
  for (const t of ticks) {
    parts.push(
      `<line class="grid" x1="${left}" y1="${sy(t).toFixed(1)}" x2="${width - right}" y2="${sy(t).toFixed(1)}"/>`,
    )
    parts.push(
      `<text class="dim" x="${left - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end">${escapeHtml(fmtY(t))}</text>`,
    )
  }
  if (xs.length > 0) {
    for (let i = 0; i <= 4; i++) {
      const t = x0 + ((x1 - x0) * i) / 4
      parts.push(
        `<text class="dim" x="${sx(t).toFixed(1)}" y="${height - 8}" text-anchor="${i === 0 ? 'start' : i === 4 ? 'end' : 'middle'}">${escapeHtml(fmtX(t))}</text>`,
      )
    }
  }
  for (const th of options.thresholds ?? []) {
    if (th.value > yTop) continue
    const y = sy(th.value).toFixed(1)
    parts.push(
      `<line class="stroke-${th.tone}" stroke-dasharray="5 4" x1="${left}" y1="${y}" x2="${width - right}" y2="${y}"/>`,
    )
    parts.push(
      `<text class="dim" x="${width - right - 4}" y="${Number(y) - 3}" text-anchor="end">${escapeHtml(th.label)}</text>`,
    )
  }
  for (const s of options.series) {
    let d = ''
    let pen = false
    for (const [t, v] of s.points) {
      if (v === null || !Number.isFinite(v)) {
        pen = false
        continue
      }
      d += `${pen ? 'L' : 'M'}${sx(t).toFixed(1)},${sy(v).toFixed(1)}`
      pen = true
    }
    if (d)
      parts.push(
        `<path class="stroke-${s.tone}" fill="none" stroke-width="1.8" d="${d}"><title>${escapeHtml(s.label)}</title></path>`,
      )
  }
  if (ys.length === 0)
    parts.push(`<text class="dim" x="${left + plotW / 2}" y="${top + plotH / 2}" text-anchor="middle">no data</text>`)
  parts.push(`<line class="axis" x1="${left}" y1="${top + plotH}" x2="${width - right}" y2="${top + plotH}"/>`)
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(options.title ?? 'line chart')}">${parts.join('')}</svg>`
  return figure(
    options.title,
    svg,
    options.series.length > 1 ? legend(options.series.map((s) => ({label: s.label, tone: s.tone}))) : undefined,
  )
}

export interface TimelineSpan {
  start: number
  end: number
  label?: string
  tone: Tone
}

export interface TimelineMarker {
  at: number
  label: string
  tone: Tone
}

export interface TimelineLane {
  label: string
  spans: TimelineSpan[]
  markers?: TimelineMarker[]
}

export interface TimelineOptions {
  title?: string
  /** Epoch ms; default the earliest and latest span or marker. */
  start?: number
  end?: number
  lanes: TimelineLane[]
  xFormat?: (ms: number) => string
  width?: number
  /** Legend entries (tone → meaning). */
  legend?: {label: string; tone: Tone}[]
}

/**
 * Lanes of spans on one time axis: restore drill phases (backup → restore → validate, with the
 * RPO point as a marker), or the periods an SLO burned its budget too fast.
 */
export function timeline(options: TimelineOptions): Html {
  const width = options.width ?? 720
  const labelW = 170
  const right = 14
  const laneH = 26
  const top = 8
  const axisH = 26
  const all = options.lanes.flatMap((l) => [
    ...l.spans.flatMap((s) => [s.start, s.end]),
    ...(l.markers ?? []).map((m) => m.at),
  ])
  const start = options.start ?? Math.min(...all)
  const end = options.end ?? Math.max(...all)
  const span = end > start ? end - start : 1
  const plotW = width - labelW - right
  const sx = (t: number) => labelW + ((Math.min(Math.max(t, start), end) - start) / span) * plotW
  const height = top + options.lanes.length * laneH + axisH
  const fmtX = options.xFormat ?? defaultTimeFormat(span)
  const parts: string[] = []
  for (let i = 0; i <= 4; i++) {
    const t = start + (span * i) / 4
    const x = sx(t).toFixed(1)
    parts.push(`<line class="grid" x1="${x}" y1="${top}" x2="${x}" y2="${top + options.lanes.length * laneH}"/>`)
    parts.push(
      `<text class="dim" x="${x}" y="${height - 8}" text-anchor="${i === 0 ? 'start' : i === 4 ? 'end' : 'middle'}">${escapeHtml(fmtX(t))}</text>`,
    )
  }
  options.lanes.forEach((lane, i) => {
    const y = top + i * laneH
    parts.push(
      `<text x="${labelW - 8}" y="${y + 17}" text-anchor="end">${escapeHtml(truncate(lane.label, 24))}<title>${escapeHtml(lane.label)}</title></text>`,
    )
    parts.push(`<line class="axis" x1="${labelW}" y1="${y + laneH / 2}" x2="${width - right}" y2="${y + laneH / 2}"/>`)
    for (const s of lane.spans) {
      const x = sx(s.start)
      const w = Math.max(2, sx(s.end) - x)
      const title = `${lane.label}${s.label ? ` · ${s.label}` : ''}: ${fmtX(s.start)} → ${fmtX(s.end)}`
      parts.push(
        `<rect class="fill-${s.tone}" x="${x.toFixed(1)}" y="${y + 5}" width="${w.toFixed(1)}" height="${laneH - 10}" rx="3"><title>${escapeHtml(title)}</title></rect>`,
      )
      if (s.label && w > s.label.length * 6.5 + 8)
        parts.push(`<text x="${(x + 5).toFixed(1)}" y="${y + 17}" style="fill:#fff">${escapeHtml(s.label)}</text>`)
    }
    for (const m of lane.markers ?? []) {
      const x = sx(m.at).toFixed(1)
      parts.push(
        `<path class="fill-${m.tone}" d="M${x},${y + 3} l5,-0 l-5,8 l-5,-8 z"><title>${escapeHtml(`${m.label}: ${fmtX(m.at)}`)}</title></path>`,
      )
      parts.push(
        `<line class="stroke-${m.tone}" x1="${x}" y1="${y + 3}" x2="${x}" y2="${y + laneH - 3}" stroke-width="1.5"/>`,
      )
    }
  })
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(options.title ?? 'timeline')}">${parts.join('')}</svg>`
  return figure(options.title, svg, options.legend ? legend(options.legend) : undefined)
}

function defaultTimeFormat(spanMs: number): (ms: number) => string {
  if (spanMs <= 2 * 3_600_000) return (ms) => new Date(ms).toISOString().slice(11, 19)
  if (spanMs <= 3 * 86_400_000) return (ms) => new Date(ms).toISOString().slice(5, 16).replace('T', ' ')
  return (ms) => new Date(ms).toISOString().slice(0, 10)
}

export interface MeterOptions {
  /** 0..1 fills the bar; below 0 shows an empty, red bar. */
  value: number | null
  tone: Tone
  label?: string
  width?: number
}

/** A small inline bar (error budget remaining, utilisation); null shows as hatched "no data". */
export function meter(options: MeterOptions): Html {
  const width = options.width ?? 120
  const h = 12
  const v = options.value
  const filled = v === null ? 0 : Math.max(0, Math.min(1, v)) * width
  const body =
    v === null
      ? `<rect x="0" y="0" width="${width}" height="${h}" rx="3" class="fill-muted" opacity="0.35"/><text x="${width / 2}" y="10" text-anchor="middle" style="font-size:9px" class="dim">no data</text>`
      : `<rect x="0" y="0" width="${width}" height="${h}" rx="3" class="fill-muted" opacity="0.35"/><rect x="0" y="0" width="${filled.toFixed(1)}" height="${h}" rx="3" class="fill-${options.tone}"/>`
  return raw(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${h}" width="${width}" height="${h}" role="img" aria-label="${escapeHtml(options.label ?? (v === null ? 'no data' : `${Math.round(v * 100)} %`))}" style="vertical-align:-2px">${body}</svg>`,
  )
}
