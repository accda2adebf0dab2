/**
 * The shared HTML report shell: one self-contained page (inline CSS, inline SVG, no scripts,
 * fonts or images from anywhere else) that opens from a file, a CI artifact or an e-mail.
 * `cost --html`, `slo --html` and `dr drill` reports are built from these pieces.
 */

/** Markup that is already safe: values interpolated into `html` are escaped unless they are Html. */
export class Html {
  constructor(readonly value: string) {}

  toString(): string {
    return this.value
  }
}

export type Tone = 'good' | 'warn' | 'bad' | 'info' | 'neutral' | 'muted'

const ENTITIES: Record<string, string> = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (ch) => ENTITIES[ch])
}

/** Trusted markup (only for strings this module's callers built themselves). */
export function raw(markup: string): Html {
  return new Html(markup)
}

function fragment(value: unknown): string {
  if (value instanceof Html) return value.value
  if (Array.isArray(value)) return value.map(fragment).join('')
  if (value === undefined || value === null || value === false) return ''
  return escapeHtml(value)
}

/** Tagged template: html`<td>${name}</td>` escapes `name`; Html values and arrays of them pass through. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]
  for (let i = 0; i < values.length; i++) out += fragment(values[i]) + strings[i + 1]
  return new Html(out)
}

export interface ReportSection {
  title: string
  /** Anchor for the table of contents; default derived from the title. */
  id?: string
  intro?: string
  body: Html | Html[]
}

export interface ReportPage {
  title: string
  subtitle?: string
  generatedAt?: Date
  /** Facts shown under the title: cluster, window, data sources. */
  meta?: {label: string; value: string}[]
  sections: ReportSection[]
  footer?: string
}

const CSS = `
:root{--fg:#1d2329;--muted:#5f6b76;--line:#d8dee4;--bg:#fff;--panel:#f6f8fa;
--good:#1a7f37;--warn:#b35900;--bad:#cf222e;--info:#0969da;--neutral:#6e7781;--mutedc:#afb8c1;
--good-bg:#dafbe1;--warn-bg:#fff1e0;--bad-bg:#ffebe9;--info-bg:#ddf4ff;--neutral-bg:#eaeef2;--muted-bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,"Segoe UI","DejaVu Sans",Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1120px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:18px 0 6px}p{margin:6px 0}
.subtitle{color:var(--muted);margin:0 0 12px}
.meta{display:flex;flex-wrap:wrap;gap:4px 20px;margin:8px 0 4px;color:var(--muted);font-size:13px}.meta b{color:var(--fg);font-weight:600}
nav.toc{font-size:13px;margin:8px 0 0}nav.toc a{margin-right:14px;color:var(--info);text-decoration:none}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:10px;margin:12px 0}
.kpi{background:var(--panel);border:1px solid var(--line);border-left:4px solid var(--neutral);border-radius:6px;padding:10px 12px}
.kpi .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.kpi .value{font-size:22px;font-weight:600;margin-top:2px;font-variant-numeric:tabular-nums}.kpi .hint{color:var(--muted);font-size:12px}
.kpi.good{border-left-color:var(--good)}.kpi.warn{border-left-color:var(--warn)}.kpi.bad{border-left-color:var(--bad)}.kpi.info{border-left-color:var(--info)}
table{border-collapse:collapse;width:100%;margin:8px 0 4px;font-size:13px}
caption{text-align:left;color:var(--muted);padding:2px 0 6px;font-size:12px}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--panel);font-weight:600;white-space:nowrap}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.total td{font-weight:600;border-top:2px solid var(--line)}
.badge{display:inline-block;padding:0 7px;border-radius:10px;font-size:12px;font-weight:600;white-space:nowrap}
.badge.good{background:var(--good-bg);color:var(--good)}.badge.warn{background:var(--warn-bg);color:var(--warn)}.badge.bad{background:var(--bad-bg);color:var(--bad)}
.badge.info{background:var(--info-bg);color:var(--info)}.badge.neutral{background:var(--neutral-bg);color:var(--neutral)}.badge.muted{background:var(--muted-bg);color:var(--muted)}
.note{border-left:4px solid var(--info);background:var(--info-bg);padding:8px 12px;border-radius:4px;margin:8px 0}
.note.warn{border-color:var(--warn);background:var(--warn-bg)}.note.bad{border-color:var(--bad);background:var(--bad-bg)}.note.good{border-color:var(--good);background:var(--good-bg)}
.note.neutral,.note.muted{border-color:var(--neutral);background:var(--panel)}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:8px 24px}
figure{margin:8px 0}figcaption{color:var(--muted);font-size:12px;margin-bottom:4px}
svg{max-width:100%;height:auto;font-family:inherit}
svg text{fill:var(--fg);font-size:12px}svg .axis{stroke:var(--line)}svg .grid{stroke:var(--line);stroke-dasharray:2 3}
svg .dim{fill:var(--muted)}
.fill-good{fill:var(--good)}.fill-warn{fill:var(--warn)}.fill-bad{fill:var(--bad)}.fill-info{fill:var(--info)}.fill-neutral{fill:var(--neutral)}.fill-muted{fill:var(--mutedc)}
.stroke-good{stroke:var(--good)}.stroke-warn{stroke:var(--warn)}.stroke-bad{stroke:var(--bad)}.stroke-info{stroke:var(--info)}.stroke-neutral{stroke:var(--neutral)}.stroke-muted{stroke:var(--mutedc)}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:var(--muted);margin:2px 0 6px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.swatch-good{background:var(--good)}.swatch-warn{background:var(--warn)}.swatch-bad{background:var(--bad)}.swatch-info{background:var(--info)}.swatch-neutral{background:var(--neutral)}.swatch-muted{background:var(--mutedc)}
footer{margin-top:36px;color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding-top:8px}
.nowrap{white-space:nowrap}
code{font:12px ui-monospace,"DejaVu Sans Mono",monospace;background:var(--panel);padding:1px 4px;border-radius:3px}
@media print{main{max-width:none;padding:0}h2{break-after:avoid}figure,table{break-inside:avoid}}
`

export function slug(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'section'
  )
}

/** The whole page. Deterministic for the same input (generatedAt is the only clock it shows). */
export function renderPage(page: ReportPage): string {
  const sections = page.sections.map((s) => ({...s, id: s.id ?? slug(s.title)}))
  const meta = [
    ...(page.generatedAt ? [{label: 'Generated', value: page.generatedAt.toISOString().replace(/\.\d+Z$/, 'Z')}] : []),
    ...(page.meta ?? []),
  ]
  const body = html`<main>
    <header>
      <h1>${page.title}</h1>
      ${page.subtitle ? html`<p class="subtitle">${page.subtitle}</p>` : ''}
      ${meta.length ? html`<div class="meta">${meta.map((m) => html`<span>${m.label}: <b>${m.value}</b></span>`)}</div>` : ''}
      ${sections.length > 2 ? html`<nav class="toc">${sections.map((s) => html`<a href="#${s.id}">${s.title}</a>`)}</nav>` : ''}
    </header>
    ${sections.map(
      (s) =>
        html`<section id="${s.id}">
          <h2>${s.title}</h2>
          ${s.intro ? html`<p>${s.intro}</p>` : ''} ${s.body}
        </section> `,
    )}
    <footer>${page.footer ?? 'Generated by retailops.'}</footer>
  </main>`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="retailops">
<title>${escapeHtml(page.title)}</title>
<style>${CSS}</style>
</head>
<body>
${body.value}
</body>
</html>
`
}

export function badge(text: string, tone: Tone = 'neutral'): Html {
  return html`<span class="badge ${tone}">${text}</span>`
}

export interface Kpi {
  label: string
  value: string
  hint?: string
  tone?: Tone
}

export function kpis(items: Kpi[]): Html {
  return html`<div class="kpis">
    ${items.map(
      (k) =>
        html`<div class="kpi ${k.tone ?? 'neutral'}">
          <div class="label">${k.label}</div>
          <div class="value">${k.value}</div>
          ${k.hint ? html`<div class="hint">${k.hint}</div>` : ''}
        </div>`,
    )}
  </div>`
}

export function note(text: string | Html, tone: Tone = 'info'): Html {
  return html`<div class="note ${tone}">${text}</div>`
}

export function heading(text: string): Html {
  return html`<h3>${text}</h3>`
}

export function paragraph(text: string | Html): Html {
  return html`<p>${text}</p>`
}

export function grid(...items: Html[]): Html {
  return html`<div class="grid2">${items.map((i) => html`<div>${i}</div>`)}</div>`
}

export interface TableColumn<T> {
  header: string
  value: (row: T) => string | number | Html | undefined | null
  /** Right-aligned tabular figures. */
  numeric?: boolean
}

export interface TableOptions<T> {
  caption?: string
  /** A last, bold row (totals). */
  total?: T
  /** Rows after this many are left out, with a line saying how many. */
  limit?: number
}

export function table<T>(rows: T[], columns: TableColumn<T>[], options: TableOptions<T> = {}): Html {
  const shown = options.limit !== undefined ? rows.slice(0, options.limit) : rows
  const cell = (c: TableColumn<T>, r: T) => {
    const v = c.value(r)
    return html`<td${c.numeric ? raw(' class="num"') : ''}>${v === undefined || v === null ? '' : v}</td>`
  }
  const hidden = rows.length - shown.length
  return html`<table>
      ${
        options.caption
          ? html`<caption>
              ${options.caption}
            </caption>`
          : ''
      }
      <thead>
        <tr>
          ${columns.map((c) => html`<th${c.numeric ? raw(' class="num"') : ''}>${c.header}</th>`)}
        </tr>
      </thead>
      <tbody>
        ${shown.map(
          (r) =>
            html`<tr>
              ${columns.map((c) => cell(c, r))}
            </tr> `,
        )}
        ${
          options.total
            ? html`<tr class="total">
                ${columns.map((c) => cell(c, options.total as T))}
              </tr>`
            : ''
        }
      </tbody>
    </table>
    ${hidden > 0 ? html`<p class="subtitle">… and ${hidden} more rows (the JSON and CSV outputs have all of them).</p>` : ''}`
}

export function legend(items: {label: string; tone: Tone}[]): Html {
  return html`<div class="legend">
    ${items.map((i) => html`<span><i class="swatch-${i.tone}"></i>${i.label}</span>`)}
  </div>`
}
