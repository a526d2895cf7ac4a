// A line chart drawn as SVG: a series of [time ms, value] points over a
// fixed window, its axis labelled with the latest value and the maximum.

import { svg, h, replace } from './dom.js';

const WIDTH = 360;
const HEIGHT = 120;
const PAD = 4;

/** A chart titled `title` showing `unit`; call `draw(points, windowMs)` to update it. */
export function lineChart(id, title, unit) {
  const line = svg('polyline', { class: 'series', points: '' });
  const dots = svg('g', { class: 'dots' });
  const grid = svg('line', { class: 'baseline', x1: 0, y1: HEIGHT - PAD, x2: WIDTH, y2: HEIGHT - PAD });
  const plot = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'chart', role: 'img', 'aria-label': title }, grid, line, dots);
  const latest = h('span', { class: 'latest' }, '–');
  const peak = h('span', { class: 'peak' }, '');
  const span = h('div', { class: 'span' }, 'no data yet');
  const view = h('figure', { class: 'chart-box', id }, h('figcaption', {}, title, ' ', latest, ' ', peak), plot, span);

  /** Draws `points`: the x axis spans the data, up to `windowMs`. */
  function draw(points, windowMs) {
    const now = points.length ? points[points.length - 1][0] : Date.now();
    const shown = points.length > 1 ? Math.min(windowMs, now - points[0][0]) : windowMs;
    const max = Math.max(1e-9, ...points.map((p) => p[1]));
    // Headroom above the highest point, so a steady rate is not drawn on the frame.
    const top = max * 1.15;
    const x = (t) => WIDTH - ((now - t) / shown) * WIDTH;
    const y = (v) => HEIGHT - PAD - (v / top) * (HEIGHT - 2 * PAD);
    const coords = points.map(([t, v]) => [x(t).toFixed(1), y(v).toFixed(1)]);
    line.setAttribute('points', coords.map((c) => c.join(',')).join(' '));
    dots.replaceChildren(...coords.map(([cx, cy]) => svg('circle', { cx, cy, r: 1.5 })));
    view.dataset.points = String(points.length);
    if (points.length > 1) replace(span, `last ${Math.round(shown / 1000)} s`);
    if (points.length) {
      replace(latest, format(points[points.length - 1][1]) + ' ' + unit);
      replace(peak, '(max ' + format(max) + ')');
    }
  }
  /** Says why there is no series. */
  function absent(why) {
    replace(span, why);
  }
  return { view, draw, absent };
}

/** A number with at most 3 significant decimals. */
export function format(v) {
  if (v == null || isNaN(v)) return '–';
  if (v === 0) return '0';
  if (Math.abs(v) >= 100) return v.toFixed(0);
  return Number(v.toPrecision(3)).toString();
}
