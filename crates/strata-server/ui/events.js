// One event as the console shows it: type, version, position, time, the
// data (pretty JSON, or size and hex for binary), metadata, and links for
// correlation and causation ids. Everything is text nodes.

import { h, link, pairs } from './dom.js';
import { seg } from './api.js';

/** Bytes of hex preview shown for binary data. */
const HEX_PREVIEW_BYTES = 64;

/** Characters of JSON shown before the rest is cut (the full text is a click away). */
const JSON_PREVIEW_CHARS = 20000;

/** The route of an event: its stream page at its version. */
export function eventRoute(e) {
  return `/stream/${seg(e.stream)}/${e.version}`;
}

/** The `$all` route filtered by a correlation id. */
export function correlationRoute(id) {
  return `/all/correlation/${seg(id)}`;
}

/** The route that finds the event `id` (a causation id), searching the events of `correlation` first. */
export function causationRoute(id, correlation) {
  return `/all/causation/${seg(id)}` + (correlation ? `/${seg(correlation)}` : '');
}

/** A table row summarizing `e`; `onOpen` shows it in full. */
export function eventRow(e, onOpen, showStream) {
  return h(
    'tr',
    { class: 'event-row', 'data-position': e.position, 'data-version': e.version },
    showStream ? h('td', {}, link(`/stream/${seg(e.stream)}`, e.stream)) : null,
    h('td', { class: 'num' }, String(e.version)),
    h('td', { class: 'num' }, String(e.position)),
    h('td', {}, h('button', { type: 'button', class: 'linklike open-event', onclick: () => onOpen(e) }, e.type)),
    h('td', { class: 'time' }, formatTime(e.recorded_at)),
  );
}

/** The column heads matching `eventRow`. */
export function eventHead(showStream) {
  return h('thead', {}, h('tr', {}, showStream ? h('th', {}, 'Stream') : null, h('th', {}, 'Version'), h('th', {}, 'Position'), h('th', {}, 'Type'), h('th', {}, 'Recorded')));
}

/** The full view of `e`. */
export function eventDetail(e) {
  const meta = e.metadata || {};
  const rows = [
    ['Stream', link(`/stream/${seg(e.stream)}`, e.stream)],
    ['Type', e.type],
    ['Version', String(e.version)],
    ['Position', String(e.position)],
    ['Recorded', formatTime(e.recorded_at)],
    ['Id', e.id],
  ];
  if (e.tags && e.tags.length) rows.push(['Tags', e.tags.join(', ')]);
  return h(
    'section',
    { class: 'event-detail card', 'data-event-id': e.id },
    h('h3', {}, `${e.type} · ${e.stream} v${e.version}`),
    pairs(rows),
    h('h4', {}, 'Data'),
    dataView(e),
    h('h4', {}, 'Metadata'),
    metadataView(meta),
  );
}

function metadataView(meta) {
  const keys = Object.keys(meta);
  if (!keys.length) return h('p', { class: 'muted' }, 'none');
  return pairs(
    keys.map((k) => {
      const v = meta[k];
      if (k === 'correlation_id') return [k, h('span', {}, link(correlationRoute(v), v, ' ', h('small', {}, '(events with this correlation id)')))];
      if (k === 'causation_id') return [k, h('span', {}, link(causationRoute(v, meta.correlation_id), v, ' ', h('small', {}, '(the causing event)')))];
      return [k, v];
    }),
  );
}

function dataView(e) {
  if (e.content_type === 'binary') {
    const bytes = base64Bytes(typeof e.data === 'string' ? e.data : '');
    return h('div', { class: 'binary' }, h('p', {}, `binary, ${bytes.length} bytes`), h('pre', { class: 'hex' }, hexPreview(bytes)));
  }
  let text = JSON.stringify(e.data, null, 2);
  if (text === undefined) text = String(e.data);
  if (text.length > JSON_PREVIEW_CHARS) text = text.slice(0, JSON_PREVIEW_CHARS) + `\n… (${text.length} characters)`;
  return h('pre', { class: 'json' }, text);
}

function base64Bytes(b64) {
  try {
    const raw = atob(b64);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  } catch {
    return new Uint8Array();
  }
}

function hexPreview(bytes) {
  const lines = [];
  const n = Math.min(bytes.length, HEX_PREVIEW_BYTES);
  for (let off = 0; off < n; off += 16) {
    const row = Array.from(bytes.slice(off, Math.min(off + 16, n)));
    const hex = row.map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = row.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
    lines.push(off.toString(16).padStart(6, '0') + '  ' + hex.padEnd(48) + ' ' + ascii);
  }
  if (bytes.length > n) lines.push(`… ${bytes.length - n} more bytes`);
  return lines.join('\n');
}

/** An RFC 3339 time as local date and time with milliseconds. */
export function formatTime(t) {
  if (!t) return '';
  const d = new Date(t);
  if (isNaN(d)) return t;
  return d.toISOString().replace('T', ' ').replace('Z', ' UTC');
}
