// Charts drawn as SVG elements (createElementNS), from counts the API made: a stacked
// timeline by outcome, and horizontal bars of refusals by actor. Each bar carries its numbers
// as data attributes and a <title>, so they can be read by assistive technology and tests.

import {el, svg} from './dom.js';

export const OUTCOMES = ['success', 'denied', 'failure'];
const W = 800;
const H = 240;
const PAD = {left: 48, right: 48, top: 12, bottom: 36};

// Every bucket start from `from` to `to`, aligned to UTC hours or days, so empty buckets show.
export function bucketStarts(from, to, bucket) {
  const step = bucket === 'day' ? 86_400_000 : 3_600_000;
  const starts = [];
  let t = Math.floor(Date.parse(from) / step) * step;
  const end = Date.parse(to);
  while (t < end && starts.length < 800) {
    starts.push(new Date(t).toISOString().replace('.000Z', 'Z'));
    t += step;
  }
  return starts;
}

function label(iso, bucket) {
  return bucket === 'day' ? iso.slice(5, 10) : `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
}

// The timeline: one stacked bar per bucket, success / denied / failure.
export function timeline(stats) {
  const starts = bucketStarts(stats.from, stats.to, stats.bucket);
  const byStart = new Map(starts.map((s) => [s, {success: 0, denied: 0, failure: 0}]));
  const totals = {success: 0, denied: 0, failure: 0};
  for (const c of stats.counts) {
    const slot = byStart.get(c.start);
    if (slot && c.key in slot) slot[c.key] += c.count;
    if (c.key in totals) totals[c.key] += c.count;
  }
  const max = Math.max(1, ...[...byStart.values()].map((v) => v.success + v.denied + v.failure));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slotW = plotW / Math.max(1, starts.length);
  const barW = Math.max(1, slotW * 0.8);
  const y = (v) => PAD.top + plotH - (v / max) * plotH;
  const chart = svg('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
    'aria-label': `Events per ${stats.bucket} by outcome: ${OUTCOMES.map((o) => `${o} ${totals[o]}`).join(', ')}`});
  chart.append(svg('line', {x1: PAD.left, y1: y(0), x2: W - PAD.right, y2: y(0), class: 'axis'}));
  for (const v of [0, Math.round(max / 2), max]) {
    chart.append(svg('text', {x: PAD.left - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end'}, v));
  }
  const every = Math.max(1, Math.ceil(starts.length / 8));
  starts.forEach((start, i) => {
    const x = PAD.left + i * slotW + (slotW - barW) / 2;
    let base = 0;
    for (const outcome of OUTCOMES) {
      const n = byStart.get(start)[outcome];
      if (n === 0) continue;
      chart.append(svg('rect', {x, y: y(base + n), width: barW, height: y(base) - y(base + n),
        class: `bar ${outcome}`, 'data-start': start, 'data-key': outcome, 'data-count': n},
        svg('title', {}, `${label(start, stats.bucket)} UTC: ${n} ${outcome}`)));
      base += n;
    }
    if (i % every === 0) {
      chart.append(svg('text', {x: x + barW / 2, y: H - PAD.bottom + 16, class: 'tick', 'text-anchor': 'middle'},
        label(start, stats.bucket)));
    }
  });
  const legend = el('ul', {class: 'legend'}, OUTCOMES.map((o) =>
    el('li', {'data-key': o}, el('span', {class: `swatch ${o}`}), `${o}: `, el('strong', {class: 'total'}, totals[o]))));
  return el('figure', {class: 'figure', 'data-chart': 'timeline'}, chart, legend,
    el('figcaption', {}, `Events per ${stats.bucket} (UTC), by outcome, ${stats.from} to ${stats.to}`));
}

// Refusals by actor: total denied per client id, largest first, at most 12 bars.
export function byActor(stats) {
  const sums = new Map();
  for (const c of stats.counts) {
    const key = c.key ?? 'anonymous';
    sums.set(key, (sums.get(key) || 0) + c.count);
  }
  const rows = [...sums.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 12);
  const rowH = 26;
  const height = Math.max(1, rows.length) * rowH + 8;
  const labelW = 300;
  const max = Math.max(1, ...rows.map(([, n]) => n));
  const chart = svg('svg', {viewBox: `0 0 ${W} ${height}`, class: 'chart', role: 'img',
    'aria-label': `Refusals by actor: ${rows.map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`});
  if (rows.length === 0) {
    chart.append(svg('text', {x: 8, y: 20, class: 'tick'}, 'No refusals in this window.'));
  }
  rows.forEach(([key, n], i) => {
    const w = ((W - labelW - 60) * n) / max;
    chart.append(svg('text', {x: labelW - 8, y: i * rowH + 21, class: 'tick mono', 'text-anchor': 'end'}, key));
    chart.append(svg('rect', {x: labelW, y: i * rowH + 6, width: Math.max(1, w), height: rowH - 8,
      class: 'bar denied', 'data-key': key, 'data-count': n}, svg('title', {}, `${key}: ${n} refused`)));
    chart.append(svg('text', {x: labelW + w + 6, y: i * rowH + 21, class: 'tick'}, n));
  });
  return el('figure', {class: 'figure', 'data-chart': 'actors'}, chart,
    el('figcaption', {}, `Refused calls by actor (client id), ${stats.from} to ${stats.to}${stats.truncated ? ' (cut short: narrow the window)' : ''}`));
}
