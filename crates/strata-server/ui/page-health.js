// #/health: /health and, for admin keys, /metrics every POLL_MS, drawn as
// live charts (appends/s, events/s, durable syncs/s), append latency
// percentiles, subscriptions, disk use, head position, store kind and
// version; and scavenging.

import { h, replace, note, pairs } from './dom.js';
import { getJson, getText, send } from './api.js';
import { may } from './session.js';
import { parseMetrics, value, buckets, bucketDelta, quantile } from './metrics.js';
import { lineChart, format } from './chart.js';

/** How often the page polls, in ms. */
const POLL_MS = 2000;

/** How much history the charts show, in ms. */
const WINDOW_MS = 5 * 60 * 1000;

/** Samples kept: the window at the poll rate. */
const MAX_SAMPLES = WINDOW_MS / POLL_MS + 1;

/** Samples back the latency percentiles look (about a minute). */
const LATENCY_LOOKBACK_SAMPLES = 30;

const RATES = [
  ['chart-appends', 'Appends/s', 'strata_appends_total'],
  ['chart-events', 'Events/s', 'strata_events_appended_total'],
  ['chart-syncs', 'Durable syncs/s', 'strata_store_durable_syncs_total'],
];

export async function render(main) {
  const healthBox = h('div', { id: 'health-status' });
  const facts = h('div', { id: 'health-facts' });
  const latency = h('div', { id: 'latency' });
  const scavenge = h('div', { id: 'scavenge' });
  const charts = RATES.map(([id, title, metric]) => ({ chart: lineChart(id, title, '/s'), metric }));
  const samples = [];
  let timer = null;
  let stopped = false;

  async function poll() {
    try {
      const health = await getJson('/health');
      replace(healthBox, note(health.status === 'ok' ? 'info' : 'error', `Store ${health.status}` + (health.head_position != null ? `, head position ${health.head_position}` : '')));
    } catch (e) {
      replace(healthBox, note('error', 'Health: ' + e.message));
    }
    if (may('admin')) {
      try {
        const parsed = parseMetrics(await getText('/metrics'));
        samples.push({ t: Date.now(), m: parsed });
        if (samples.length > MAX_SAMPLES) samples.shift();
        drawAll(parsed);
      } catch (e) {
        replace(facts, note('error', 'Metrics: ' + e.message));
      }
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }

  function drawAll(m) {
    for (const { chart, metric } of charts) {
      if (value(m, metric) == null) chart.absent('not counted by this store');
      else chart.draw(rates(samples, metric), WINDOW_MS);
    }
    const info = m.find((s) => s.name === 'strata_store_info');
    const disk = value(m, 'strata_store_disk_bytes');
    replace(
      facts,
      pairs([
        ['Store kind', info ? info.labels.kind : 'unknown'],
        ['Version', info ? info.labels.version : 'unknown'],
        ['Head position', fmtInt(value(m, 'strata_head_position'))],
        ['Disk use', disk == null ? 'not on disk' : bytes(disk)],
        ['Open subscriptions', fmtInt(value(m, 'strata_open_subscriptions'))],
        ['Subscription lag (most queued on one)', fmtInt(value(m, 'strata_subscription_lag_messages_max')) + ' messages'],
      ]),
    );
    const now = buckets(m, 'strata_append_duration_seconds');
    const back = samples.length > LATENCY_LOOKBACK_SAMPLES ? samples[samples.length - 1 - LATENCY_LOOKBACK_SAMPLES] : null;
    let recent = bucketDelta(now, back ? buckets(back.m, 'strata_append_duration_seconds') : null);
    let span = back ? 'last minute' : 'since start';
    if (!recent.length || !(recent[recent.length - 1][1] > 0)) {
      recent = now;
      span = 'since start';
    }
    const ms = (q) => {
      const v = quantile(q, recent);
      return v == null ? '–' : format(v * 1000) + ' ms';
    };
    replace(latency, h('h3', {}, `Append latency (${span})`), pairs([['p50', ms(0.5)], ['p90', ms(0.9)], ['p99', ms(0.99)], ['appends counted', fmtInt(recent.length ? recent[recent.length - 1][1] : 0)]]));
    drawScavenge(m);
  }

  function drawScavenge(m) {
    const running = value(m, 'strata_scavenge_running');
    if (running == null) {
      replace(scavenge, h('h3', {}, 'Scavenging'), note('info', 'This store does not scavenge.'));
      return;
    }
    const out = h('span', { id: 'scavenge-result' });
    const button = h('button', { type: 'button', id: 'scavenge-start', disabled: running === 1 }, 'Scavenge now');
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        const r = await send('POST', '/admin/scavenge');
        replace(out, `removed ${r.events_removed} events, ${bytes(r.bytes_before - r.bytes_after)} reclaimed`);
      } catch (e) {
        replace(out, note('error', e.message));
      }
    });
    replace(
      scavenge,
      h('h3', {}, 'Scavenging'),
      pairs([
        ['Running', running ? `yes (${value(m, 'strata_scavenge_segments_done')}/${value(m, 'strata_scavenge_segments_total')} segments)` : 'no'],
        ['Events removed', fmtInt(value(m, 'strata_scavenge_events_removed_total'))],
        ['Bytes reclaimed', bytes(value(m, 'strata_scavenge_bytes_reclaimed_total') || 0)],
      ]),
      button,
      ' ',
      out,
    );
  }

  replace(
    main,
    h('h2', {}, 'Health and metrics'),
    healthBox,
    may('admin')
      ? [h('div', { class: 'charts' }, charts.map((c) => c.chart.view)), h('div', { class: 'columns' }, h('section', {}, h('h3', {}, 'Server'), facts), h('section', {}, latency)), scavenge]
      : note('info', 'Metrics need an admin key; this key sees the health check only.'),
  );
  await poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** Per-second rates of counter `name` between consecutive samples. */
function rates(samples, name) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const a = value(samples[i - 1].m, name);
    const b = value(samples[i].m, name);
    if (a == null || b == null) continue;
    const dt = (samples[i].t - samples[i - 1].t) / 1000;
    // A counter that went down was reset (a restart): no rate for that step.
    if (dt > 0 && b >= a) out.push([samples[i].t, (b - a) / dt]);
  }
  return out;
}

function fmtInt(v) {
  return v == null ? '–' : String(Math.round(v));
}

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${format(n)} ${units[i]}`;
}
