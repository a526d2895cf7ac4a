// #/streams: find streams by prefix or category (GET /streams), with each
// one's version, last write and state, page by page; or open one by name.

import { h, replace, note, link } from './dom.js';
import { getJson, seg, ApiError } from './api.js';
import { formatTime } from './events.js';

/** Streams per page. */
const PAGE_STREAMS = 50;

export async function render(main) {
  const prefix = h('input', { name: 'prefix', id: 'streams-prefix', placeholder: 'name prefix' });
  const category = h('input', { name: 'category', id: 'streams-category', placeholder: 'category' });
  const search = h('form', { class: 'inline', id: 'streams-search' }, prefix, category, h('button', { type: 'submit' }, 'Search'));
  const name = h('input', { name: 'stream', id: 'open-stream-name', placeholder: 'stream name' });
  const openForm = h('form', { class: 'inline', id: 'open-stream' }, name, h('button', { type: 'submit' }, 'Open stream'));
  const table = h('table', { class: 'streams', id: 'streams-table' });
  const status = h('div', { class: 'pager-status' });
  const state = { after: undefined, next: null, history: [] };

  async function load() {
    let page;
    try {
      page = await getJson('/streams', { prefix: prefix.value.trim(), category: category.value.trim(), after: state.after, limit: PAGE_STREAMS });
    } catch (e) {
      replace(table);
      replace(status, note(e instanceof ApiError && e.status === 404 ? 'info' : 'error', e instanceof ApiError && e.status === 404 ? 'This server cannot list streams; open one by name.' : e.message));
      return;
    }
    state.next = page.next;
    replace(
      table,
      h('thead', {}, h('tr', {}, h('th', {}, 'Stream'), h('th', {}, 'Version'), h('th', {}, 'State'), h('th', {}, 'Last written'), h('th', {}, 'Last position'))),
      h(
        'tbody',
        {},
        page.streams.map((s) =>
          h(
            'tr',
            { class: 'stream-row state-' + s.state, 'data-stream': s.stream },
            h('td', {}, link(`/stream/${seg(s.stream)}`, s.stream)),
            h('td', { class: 'num' }, String(s.version)),
            h('td', {}, s.state),
            h('td', { class: 'time' }, formatTime(s.last_written)),
            h('td', { class: 'num' }, s.last_position == null ? '' : String(s.last_position)),
          ),
        ),
      ),
    );
    replace(status, `${page.streams.length} streams`, state.next == null ? ' (end)' : '');
  }

  search.addEventListener('submit', (ev) => {
    ev.preventDefault();
    Object.assign(state, { after: undefined, history: [] });
    load();
  });
  openForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (name.value.trim()) location.hash = `#/stream/${seg(name.value.trim())}`;
  });
  const pager = h(
    'div',
    { class: 'pager' },
    h('button', { type: 'button', id: 'streams-prev', onclick: () => { if (state.history.length) { state.after = state.history.pop(); load(); } } }, '◀ Previous'),
    h('button', { type: 'button', id: 'streams-next', onclick: () => { if (state.next != null) { state.history.push(state.after); state.after = state.next; load(); } } }, 'Next ▶'),
  );
  replace(main, h('h2', {}, 'Streams'), search, openForm, pager, status, table);
  await load();
}
