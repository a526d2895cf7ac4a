// #/all: $all filtered by type, prefix and correlation id, newest first, and
// a live tail over server-sent events that pauses and resumes where it was.
// #/all/correlation/ID opens it filtered; #/all/causation/ID[/CORR] finds one
// event by id and opens it on its stream's page.

import { h, replace, note } from './dom.js';
import { getJson, followSse } from './api.js';
import { eventRow, eventHead, eventDetail, eventRoute } from './events.js';

/** Events per page of the filtered read. */
const PAGE_EVENTS = 25;

/** Rows the live tail keeps; older ones are dropped from the view. */
const MAX_TAIL_ROWS = 500;

/** Events looked at when finding a causing event without a correlation id. */
const MAX_CAUSATION_SCAN_EVENTS = 10000;

/** Delay before the tail reconnects after the server ended it, in ms. */
const TAIL_RECONNECT_MS = 1000;

export async function render(main, args) {
  if (args[0] === 'causation') return findCausation(main, args[1], args[2]);
  const filters = { types: '', prefix: '', correlation_id: args[0] === 'correlation' ? args[1] || '' : '' };
  const detail = h('div', { id: 'event-detail' });
  const table = h('table', { class: 'events', id: 'all-events' });
  const status = h('div', { class: 'pager-status' });
  const state = { before: undefined, next: null, history: [] };
  const inputs = {};
  const field = (name, label) => (inputs[name] = h('input', { name, id: 'filter-' + name, placeholder: label, value: filters[name] }));
  const form = h('form', { class: 'inline', id: 'all-filters' }, field('types', 'types (a,b)'), field('prefix', 'stream prefix'), field('correlation_id', 'correlation id'), h('button', { type: 'submit' }, 'Filter'));

  const read = () => {
    for (const k of Object.keys(inputs)) filters[k] = inputs[k].value.trim();
    return filters;
  };
  async function load() {
    const page = await getJson('/all', { ...read(), direction: 'backward', before: state.before, limit: PAGE_EVENTS });
    state.next = page.next;
    replace(table, eventHead(true), h('tbody', {}, page.events.map((e) => eventRow(e, (x) => replace(detail, eventDetail(x)), true))));
    replace(status, `${page.events.length} events, newest first`, state.next == null ? ' (end)' : '');
  }
  const guarded = (fn) => async (ev) => {
    if (ev) ev.preventDefault();
    fn();
    try {
      await load();
    } catch (e) {
      replace(status, note('error', e.message));
    }
  };
  form.addEventListener('submit', guarded(() => Object.assign(state, { before: undefined, history: [] })));
  const pager = h(
    'div',
    { class: 'pager' },
    h('button', { type: 'button', id: 'all-newer', onclick: guarded(() => { if (state.history.length) state.before = state.history.pop(); }) }, '◀ Newer'),
    h('button', { type: 'button', id: 'all-older', onclick: guarded(() => { if (state.next != null) { state.history.push(state.before); state.before = state.next; } }) }, 'Older ▶'),
  );
  const tail = liveTail(read, (x) => replace(detail, eventDetail(x)));
  replace(main, h('h2', {}, '$all'), form, h('div', { class: 'columns' }, h('section', {}, h('h3', {}, 'Events'), pager, status, table), tail.view), detail);
  await load();
  return tail.stop;
}

/** The live tail: start, pause, resume from the last position seen. */
function liveTail(filters, open) {
  const rows = h('tbody');
  const status = h('span', { id: 'tail-status' }, 'stopped');
  const counter = h('span', { id: 'tail-count' }, '0');
  const button = h('button', { type: 'button', id: 'tail-toggle' }, 'Start live tail');
  const state = { running: false, controller: null, last: null, received: 0, stopped: false };

  async function follow() {
    while (state.running) {
      const controller = new AbortController();
      state.controller = controller;
      if (state.last == null) {
        const health = await getJson('/health');
        state.last = health.head_position ?? 0;
      }
      replace(status, `live after position ${state.last}`);
      try {
        await followSse('/subscribe/all', { ...filters(), after: state.last }, controller.signal, onMessage);
      } catch (e) {
        replace(status, note('error', e.message));
        state.running = false;
        break;
      }
      if (!state.running) break;
      // The server ended the stream (shutdown, slow consumer): reconnect after the last event seen.
      await new Promise((r) => setTimeout(r, TAIL_RECONNECT_MS));
    }
    button.textContent = state.last == null ? 'Start live tail' : 'Resume';
    if (!state.stopped) replace(status, `paused after position ${state.last}`);
  }

  function onMessage(m) {
    if (m.event === 'caught_up') return;
    if (m.event === 'error') {
      const body = JSON.parse(m.data);
      replace(status, note('error', body.message || body.error));
      return;
    }
    const e = JSON.parse(m.data);
    state.last = e.position;
    state.received++;
    counter.textContent = String(state.received);
    rows.prepend(eventRow(e, open, true));
    while (rows.children.length > MAX_TAIL_ROWS) rows.lastChild.remove();
  }

  button.addEventListener('click', () => {
    if (state.running) {
      state.running = false;
      state.controller.abort();
    } else {
      state.running = true;
      button.textContent = 'Pause';
      follow();
    }
  });
  const view = h('section', { id: 'live-tail' }, h('h3', {}, 'Live tail'), h('p', {}, button, ' ', status, ' · received ', counter), h('table', { class: 'events' }, eventHead(true), rows));
  const stop = () => {
    state.stopped = true;
    state.running = false;
    if (state.controller) state.controller.abort();
  };
  return { view, stop };
}

async function findCausation(main, id, correlation) {
  replace(main, h('h2', {}, 'Finding event ', h('code', {}, id)), note('info', 'searching…'));
  const params = correlation ? { correlation_id: correlation } : {};
  let before;
  let seen = 0;
  for (;;) {
    const page = await getJson('/all', { ...params, direction: 'backward', before, limit: 500 });
    const found = page.events.find((e) => e.id === id);
    if (found) {
      location.hash = '#' + eventRoute(found);
      return;
    }
    seen += page.events.length;
    if (page.next == null || seen >= MAX_CAUSATION_SCAN_EVENTS) break;
    before = page.next;
  }
  replace(main, h('h2', {}, 'Event ', h('code', {}, id)), note('error', `not found among the ${seen} most recent events this key may see`));
}
