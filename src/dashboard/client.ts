/**
 * What the browser gets besides the pages: the stylesheet and one small script, served from
 * /assets like uPlot (the page's Content-Security-Policy allows only this origin: no inline
 * script, nothing from a CDN). The script keeps the live part of a page up to date from the
 * server-sent events, draws the uPlot charts, and switches the large-type wall mode.
 */

export const DASHBOARD_CSS = `
:root{--fg:#1d2329;--muted:#5f6b76;--line:#d8dee4;--bg:#fff;--panel:#f6f8fa;
--good:#1a7f37;--warn:#b35900;--bad:#cf222e;--info:#0969da;--neutral:#6e7781;
--good-bg:#dafbe1;--warn-bg:#fff1e0;--bad-bg:#ffebe9;--info-bg:#ddf4ff;--neutral-bg:#eaeef2;
font-size:clamp(14px,0.55vw + 8px,22px)}
*{box-sizing:border-box}
body{margin:0;font:1rem/1.45 -apple-system,"Segoe UI","DejaVu Sans",Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg)}
body.wall{font-size:1.5rem}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.5rem;padding:.6rem 1.2rem;background:#24292f;color:#fff}
header a{color:#fff;text-decoration:none}
.brand{font-weight:700}.brand .env{font-weight:400;color:#c9d1d9;margin-left:.5rem}
nav{display:flex;flex-wrap:wrap;gap:.2rem}
nav a{padding:.25rem .6rem;border-radius:4px}nav a.active,nav a:hover{background:#444c56}
.tools{margin-left:auto;display:flex;gap:.6rem;align-items:center}
.live-state{font-size:.8em;color:#8fd694}.live-state.stale{color:#ffb3b3}
button{font:inherit;font-size:.85em;padding:.15rem .6rem;border-radius:4px;border:1px solid #6e7781;background:#32383f;color:#fff;cursor:pointer}
main{padding:1rem 1.2rem 2rem;max-width:1600px;margin:0 auto}
body.wall main{max-width:none}
h1{font-size:1.6em;margin:.2rem 0 .6rem}h2{font-size:1.25em;margin:1.6rem 0 .5rem;border-bottom:1px solid var(--line);padding-bottom:.2rem}
h3{font-size:1.05em;margin:.3rem 0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,26rem),1fr));gap:.8rem}
.rollout{border:1px solid var(--line);border-left:.35rem solid var(--neutral);border-radius:6px;padding:.7rem .9rem;background:var(--panel)}
.rollout.good{border-left-color:var(--good)}.rollout.warn{border-left-color:var(--warn)}.rollout.bad{border-left-color:var(--bad)}.rollout.info{border-left-color:var(--info)}
.rollout-head{display:flex;flex-wrap:wrap;align-items:baseline;gap:.4rem .7rem}
.rollout-head h3{font-size:1.3em;margin:0}
.versions{font-variant-numeric:tabular-nums}
.weight{display:flex;align-items:center;gap:.6rem;margin:.5rem 0}
.weight .bar{flex:1;height:1.1em;background:var(--neutral-bg);border-radius:4px;overflow:hidden}
.weight .fill{height:100%;background:var(--info);transition:width .4s}
.weight-value{font-size:1.6em;font-weight:700;min-width:4.5ch;text-align:right;font-variant-numeric:tabular-nums}
ol.steps{display:flex;flex-wrap:wrap;gap:.3rem;list-style:none;padding:0;margin:.3rem 0}
.step{padding:.05rem .45rem;border-radius:10px;border:1px solid var(--line);font-size:.85em;background:#fff}
.step.done{background:var(--good-bg);border-color:var(--good)}.step.current{background:var(--info-bg);border-color:var(--info);font-weight:700}
.message{margin:.3rem 0}.reason{margin:.3rem 0;padding:.3rem .5rem;background:var(--bad-bg);border-radius:4px}
.badge{display:inline-block;padding:0 .5em;border-radius:10px;font-size:.8em;font-weight:600;background:var(--neutral-bg);color:var(--neutral)}
.badge.good{background:var(--good-bg);color:var(--good)}.badge.warn{background:var(--warn-bg);color:var(--warn)}
.badge.bad{background:var(--bad-bg);color:var(--bad)}.badge.info{background:var(--info-bg);color:var(--info)}
.badge.muted{color:var(--muted)}
.muted,.read-at{color:var(--muted);font-size:.9em}.empty{color:var(--muted);font-style:italic}
span.good{color:var(--good)}span.bad{color:var(--bad)}
.error{padding:.5rem .8rem;border:1px solid var(--bad);background:var(--bad-bg);border-radius:4px;margin:.5rem 0}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:.4rem 0;font-size:.92em;display:block;overflow-x:auto}
@media (min-width:900px){table{display:table}}
th,td{padding:.3rem .5rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--panel);font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code{font-size:.88em;background:var(--panel);padding:0 .25em;border-radius:3px;word-break:break-all}
.meter{height:.5em;background:var(--neutral-bg);border-radius:3px;overflow:hidden;min-width:6rem}
.meter .fill{height:100%;background:var(--good)}.meter.warn .fill{background:var(--warn)}.meter.bad .fill{background:var(--bad)}
.budget-value{font-weight:700;font-size:1.1em}
.burns{display:flex;flex-wrap:wrap;gap:.2rem .6rem;font-size:.85em}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(12rem,1fr));gap:.6rem;margin:.6rem 0}
.kpi{background:var(--panel);border:1px solid var(--line);border-left:4px solid var(--neutral);border-radius:6px;padding:.5rem .7rem}
.kpi.good{border-left-color:var(--good)}.kpi .label{color:var(--muted);font-size:.8em;text-transform:uppercase}.kpi .value{font-size:1.4em;font-weight:600}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,34rem),1fr));gap:1rem}
figure{margin:.5rem 0}figcaption{font-weight:600;margin-bottom:.3rem}
figure svg{max-width:100%;height:auto}
svg text{fill:var(--fg);font-size:12px}svg .axis{stroke:var(--line)}svg .grid{stroke:var(--line);stroke-dasharray:2 3}svg .dim{fill:var(--muted)}
.fill-good{fill:var(--good)}.fill-warn{fill:var(--warn)}.fill-bad{fill:var(--bad)}.fill-info{fill:var(--info)}.fill-neutral{fill:var(--neutral)}.fill-muted{fill:#afb8c1}
ul.events{padding-left:1.2rem;font-size:.92em}
ul.services{columns:14rem;font-size:1.1em}
.campaign{border:1px solid var(--line);border-radius:6px;padding:.5rem .8rem;margin:.6rem 0}
`

export const DASHBOARD_JS = `
(function () {
  'use strict'
  var WALL = 'retailops-dashboard-wall'
  function wall(on) {
    document.body.classList.toggle('wall', on)
    try { localStorage.setItem(WALL, on ? '1' : '0') } catch (e) {}
  }
  function charts(root) {
    if (typeof uPlot === 'undefined') return
    root.querySelectorAll('.uplot-chart[data-chart]').forEach(function (el) {
      if (el.dataset.drawn) return
      el.dataset.drawn = '1'
      var d = JSON.parse(el.dataset.chart)
      var series = [{}, {label: '1h burn rate', stroke: '#0969da', width: 2, spanGaps: false}]
      var data = [d.x, d.burn]
      var colours = ['#cf222e', '#b35900', '#6e7781', '#8250df']
      d.thresholds.forEach(function (t, i) {
        series.push({label: t.label, stroke: colours[i % colours.length], dash: [6, 4], width: 1})
        data.push(d.x.map(function () { return t.value }))
      })
      var width = Math.max(280, el.clientWidth || 600)
      new uPlot({width: width, height: Math.round(width * 0.4), series: series,
        axes: [{}, {label: 'burn rate'}]}, data, el)
    })
  }
  function live() {
    var box = document.getElementById('live')
    var state = document.getElementById('live-state')
    if (!box || !box.dataset.src || typeof EventSource === 'undefined') return
    var source = new EventSource(box.dataset.src)
    source.addEventListener('update', function (e) {
      box.innerHTML = e.data
      box.dataset.updatedAt = String(Date.now())
      charts(box)
      if (state) { state.textContent = 'live · ' + new Date().toLocaleTimeString(); state.classList.remove('stale') }
    })
    source.onerror = function () { if (state) { state.textContent = 'reconnecting'; state.classList.add('stale') } }
  }
  document.addEventListener('DOMContentLoaded', function () {
    var saved = null
    try { saved = localStorage.getItem(WALL) } catch (e) {}
    var query = new URLSearchParams(location.search).get('wall')
    wall(query === '1' || (query === null && saved === '1'))
    var button = document.getElementById('wall-toggle')
    if (button) button.addEventListener('click', function () { wall(!document.body.classList.contains('wall')) })
    charts(document)
    live()
  })
})()
`
