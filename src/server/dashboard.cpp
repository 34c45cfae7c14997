// SPDX-License-Identifier: Apache-2.0
// The endpoint's built-in dashboard (GET / with dashboard=on, the default):
// one HTML page, its script and its style, self-contained (no external
// asset, no framework: the charts are canvas sparklines), live from
// /metrics.json every 2 seconds. Served with a Content-Security-Policy that
// allows only these same-origin files and the fetch of /metrics.json.
#include "server/dashboard.h"

namespace cm {

const char* const kDashboardCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const char* const kDashboardHtml = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cachemeter</title>
<link rel="stylesheet" href="dashboard.css">
<script src="dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>cachemeter</h1>
  <span id="status">loading /metrics.json ...</span>
  <nav><a href="metrics">/metrics</a> <a href="metrics.json">/metrics.json</a> <a href="health">/health</a></nav>
</header>
<main>
  <table id="caches">
    <thead><tr>
      <th>cache</th><th>backend</th><th>hit ratio</th><th>1m</th><th>5m</th><th>1h</th><th>ops/s</th>
      <th>get p50</th><th>get p99</th><th>set p50</th><th>set p99</th><th>load p50</th><th>load p99</th>
      <th>evictions</th><th>entries</th><th>hit ratio, ops/s (last minutes)</th>
    </tr></thead>
    <tbody></tbody>
  </table>
  <p id="empty" hidden>No cache is open on this registry.</p>
</main>
</body>
</html>
)HTML";

const char* const kDashboardCss = R"CSS(body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem; color: #222; }
header { display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; }
h1 { font-size: 1.3rem; margin: 0; }
#status { color: #666; }
nav a { margin-right: .6rem; }
table { border-collapse: collapse; margin-top: 1rem; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th:nth-child(-n+2), td:nth-child(-n+2) { text-align: left; }
canvas { display: block; }
.bad { color: #b00; }
)CSS";

const char* const kDashboardJs = R"JS('use strict';
// Live view of /metrics.json (docs/exposition.md): per cache, the hit ratios
// the endpoint computes, operations per second from the exact counters
// (differences between two polls), latency quantiles from the duration
// histograms, evictions and entries; sparklines of the last 150 polls.
const POLL_MS = 2000;
const KEEP = 150;
const history = new Map();  // "cache|backend" -> [{t, ratio, ops}]
let last = null;            // the previous poll's operation totals and time

function byName(families, suffix) {
  return families.filter(f => f.name.endsWith(suffix));
}
function seriesOf(families, suffix, cache, backend) {
  const out = [];
  for (const f of byName(families, suffix))
    for (const s of f.series)
      if (s.labels.cache === cache && s.labels.backend === backend) out.push(s);
  return out;
}
function num(v) { return typeof v === 'number' ? v : (v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : NaN); }
function pct(v) { return v === null || v === undefined || Number.isNaN(v) ? '-' : (100 * v).toFixed(1) + '%'; }
function secs(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '-';
  if (v < 1e-3) return (v * 1e6).toFixed(1) + ' µs';
  if (v < 1) return (v * 1e3).toFixed(2) + ' ms';
  return v.toFixed(2) + ' s';
}
function cell(row, field, value, text) {
  const td = document.createElement('td');
  td.dataset.field = field;
  if (value !== undefined && value !== null) td.dataset.value = String(value);
  td.textContent = text;
  row.appendChild(td);
  return td;
}
function spark(canvas, points, key, max) {
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (points.length < 2) return;
  const top = max || Math.max(1e-9, ...points.map(p => p[key] || 0));
  ctx.beginPath();
  points.forEach((p, i) => {
    const x = i * (canvas.width - 1) / (KEEP - 1);
    const y = canvas.height - 1 - ((p[key] || 0) / top) * (canvas.height - 2);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.strokeStyle = key === 'ratio' ? '#2a7' : '#27c';
  ctx.stroke();
}

function render(doc) {
  const families = doc.families || [];
  const caches = doc.caches || [];
  const now = performance.now();
  const totals = new Map();
  const body = document.querySelector('#caches tbody');
  body.textContent = '';
  document.getElementById('empty').hidden = caches.length > 0;
  for (const c of caches) {
    const key = c.cache + '|' + c.backend;
    let ops = 0;
    for (const suffix of ['cache_hits_total', 'cache_misses_total', 'cache_sets_total', 'cache_deletes_total'])
      for (const s of seriesOf(families, suffix, c.cache, c.backend)) ops += num(s.value);
    totals.set(key, ops);
    let rate = null;
    if (last && last.totals.has(key) && now > last.t) rate = Math.max(0, (ops - last.totals.get(key)) * 1000 / (now - last.t));
    const q = {};
    for (const s of seriesOf(families, 'cache_operation_duration_seconds', c.cache, c.backend))
      q[s.labels.op] = s;
    let evictions = 0;
    for (const s of seriesOf(families, 'cache_evictions_total', c.cache, c.backend)) evictions += num(s.value);
    const entries = seriesOf(families, 'cache_entries', c.cache, c.backend).reduce((a, s) => a + num(s.value), 0);

    const row = document.createElement('tr');
    row.dataset.cache = c.cache;
    row.dataset.backend = c.backend;
    cell(row, 'cache', null, c.cache);
    cell(row, 'backend', null, c.backend);
    cell(row, 'hit_ratio', c.hit_ratio, pct(c.hit_ratio));
    for (const w of ['1m', '5m', '1h']) cell(row, 'hit_ratio_' + w, c.hit_ratio_window[w], pct(c.hit_ratio_window[w]));
    cell(row, 'ops_per_second', rate, rate === null ? '-' : rate.toFixed(1));
    for (const op of ['get', 'set', 'load']) {
      const s = q[op];
      cell(row, op + '_p50', s ? s.p50 : null, secs(s ? s.p50 : null));
      cell(row, op + '_p99', s ? s.p99 : null, secs(s ? s.p99 : null));
    }
    cell(row, 'evictions', evictions, String(evictions));
    cell(row, 'entries', entries, String(entries));
    const td = cell(row, 'chart', null, '');
    const ratioCanvas = document.createElement('canvas');
    ratioCanvas.width = 150; ratioCanvas.height = 18;
    const opsCanvas = document.createElement('canvas');
    opsCanvas.width = 150; opsCanvas.height = 18;
    td.append(ratioCanvas, opsCanvas);
    body.appendChild(row);

    const h = history.get(key) || [];
    h.push({ t: now, ratio: c.hit_ratio || 0, ops: rate || 0 });
    while (h.length > KEEP) h.shift();
    history.set(key, h);
    spark(ratioCanvas, h, 'ratio', 1);
    spark(opsCanvas, h, 'ops', 0);
  }
  last = { t: now, totals };
}

async function poll() {
  const status = document.getElementById('status');
  try {
    const r = await fetch('metrics.json', { cache: 'no-store', credentials: 'same-origin' });
    if (!r.ok) throw new Error('HTTP ' + r.status);
    render(await r.json());
    status.textContent = 'updated ' + new Date().toLocaleTimeString();
    status.classList.remove('bad');
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  } catch (e) {
    status.textContent = 'cannot read /metrics.json: ' + e.message;
    status.classList.add('bad');
  }
}
poll();
setInterval(poll, POLL_MS);
)JS";

}  // namespace cm
