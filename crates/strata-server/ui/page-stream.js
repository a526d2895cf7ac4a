// #/stream/NAME[/VERSION]: a stream's events page by page, either way, with
// one event open in full; its metadata, and (for admin keys) its retention.

import { h, replace, note, pairs } from './dom.js';
import { getJson, send, seg } from './api.js';
import { eventRow, eventHead, eventDetail } from './events.js';
import { may } from './session.js';

/** Events per page. */
export const PAGE_EVENTS = 20;

export async function render(main, [name, version]) {
  if (!name) {
    replace(main, note('error', 'No stream named.'));
    return;
  }
  const detail = h('div', { id: 'event-detail' });
  const table = h('table', { class: 'events', id: 'stream-events' });
  const status = h('div', { class: 'pager-status' });
  const meta = h('div', { id: 'stream-metadata' });
  // Where the shown page started and which way it reads; `next` is the next page's `from`.
  const state = { from: version ? Number(version) : undefined, direction: version ? 'forward' : 'backward', next: null, history: [] };

  async function load() {
    const page = await getJson(`/streams/${seg(name)}`, { from: state.from, direction: state.direction, limit: PAGE_EVENTS });
    state.next = page.next;
    replace(table, eventHead(false), h('tbody', {}, page.events.map((e) => eventRow(e, open, false))));
    replace(status, `${page.events.length} events, reading ${state.direction}`, state.next == null ? ' (end)' : '');
    if (version) {
      const e = page.events.find((x) => x.version === Number(version));
      if (e) open(e);
      version = undefined;
    }
  }

  function open(e) {
    replace(detail, eventDetail(e));
    for (const r of table.querySelectorAll('tr.selected')) r.classList.remove('selected');
    const row = table.querySelector(`tr[data-version="${e.version}"]`);
    if (row) row.classList.add('selected');
  }

  const go = (fn) => async () => {
    fn();
    try {
      await load();
    } catch (err) {
      replace(status, note('error', err.message));
    }
  };
  const controls = h(
    'div',
    { class: 'pager' },
    h('button', { type: 'button', id: 'first-page', onclick: go(() => Object.assign(state, { from: undefined, direction: 'forward', history: [] })) }, 'Oldest'),
    h('button', { type: 'button', id: 'last-page', onclick: go(() => Object.assign(state, { from: undefined, direction: 'backward', history: [] })) }, 'Newest'),
    h('button', { type: 'button', id: 'prev-page', onclick: go(() => { if (state.history.length) state.from = state.history.pop(); }) }, '◀ Previous page'),
    h('button', { type: 'button', id: 'next-page', onclick: go(() => { if (state.next != null) { state.history.push(state.from); state.from = state.next; } }) }, 'Next page ▶'),
  );

  replace(main, h('h2', {}, 'Stream ', h('code', { id: 'stream-name' }, name)), meta, controls, status, table, detail);
  await Promise.all([go(() => {})(), loadMetadata(name, meta)]);
}

async function loadMetadata(name, box) {
  let m;
  try {
    m = await getJson(`/streams/${seg(name)}/metadata`);
  } catch (e) {
    replace(box, note('info', 'Metadata: ' + e.message));
    return;
  }
  const rows = [['Metadata version', String(m.metadata_version)]];
  for (const k of ['max_count', 'max_age', 'truncate_before']) if (m[k] != null) rows.push([k, String(m[k])]);
  if (m.custom != null) rows.push(['custom', JSON.stringify(m.custom)]);
  const parts = [h('details', {}, h('summary', {}, 'Stream metadata'), pairs(rows), may('admin') ? retentionForm(name, m, box) : null)];
  replace(box, parts);
}

function retentionForm(name, m, box) {
  const count = h('input', { type: 'number', min: '1', name: 'max_count', placeholder: 'max_count', value: m.max_count ?? '' });
  const age = h('input', { type: 'number', min: '1', name: 'max_age', placeholder: 'max_age (s)', value: m.max_age ?? '' });
  const out = h('span');
  const form = h('form', { class: 'inline' }, count, age, h('button', { type: 'submit' }, 'Set retention'), out);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { expected_metadata_version: m.metadata_version };
    if (count.value) body.max_count = Number(count.value);
    if (age.value) body.max_age = Number(age.value);
    try {
      await send('PUT', `/streams/${seg(name)}/metadata`, body);
      await loadMetadata(name, box);
    } catch (e) {
      replace(out, note('error', e.message));
    }
  });
  return form;
}
