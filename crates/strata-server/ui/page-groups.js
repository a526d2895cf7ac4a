// #/groups[/NAME]: consumer groups with their lag, in-flight and parked
// counts; a group's parked messages, with replay (admin keys).

import { h, replace, note, link, pairs } from './dom.js';
import { getJson, send, seg } from './api.js';
import { may } from './session.js';
import { eventRow, eventHead, eventDetail, formatTime } from './events.js';

/** Parked messages listed (and replayed) at once. */
const PARKED_LIMIT = 100;

export async function render(main, [name]) {
  if (!may('admin')) {
    replace(main, h('h2', {}, 'Consumer groups'), note('info', 'Consumer groups are managed with an admin key.'));
    return;
  }
  if (name) return renderGroup(main, name);
  let list;
  try {
    list = await getJson('/groups');
  } catch (e) {
    replace(main, h('h2', {}, 'Consumer groups'), note(e.status === 501 ? 'info' : 'error', e.status === 501 ? 'This server has no consumer groups.' : e.message));
    return;
  }
  const head = h('thead', {}, h('tr', {}, ['Group', 'Source', 'Checkpoint', 'Lag (events)', 'Lag (s)', 'In flight', 'Parked', 'Consumers', 'Acked/s'].map((t) => h('th', {}, t))));
  const rows = list.groups.map((g) =>
    h(
      'tr',
      { class: 'group-row', 'data-group': g.name },
      h('td', {}, link(`/groups/${seg(g.name)}`, g.name)),
      h('td', {}, JSON.stringify(g.settings.source)),
      h('td', { class: 'num' }, String(g.checkpoint)),
      h('td', { class: 'num' }, String(g.lag_events)),
      h('td', { class: 'num' }, g.lag_seconds.toFixed(1)),
      h('td', { class: 'num' }, String(g.in_flight)),
      h('td', { class: 'num' + (g.parked ? ' warn' : '') }, String(g.parked)),
      h('td', { class: 'num' }, String(g.consumers)),
      h('td', { class: 'num' }, g.acked_per_second.toFixed(1)),
    ),
  );
  replace(main, h('h2', {}, 'Consumer groups'), rows.length ? h('table', { id: 'groups-table' }, head, h('tbody', {}, rows)) : note('info', 'No groups yet.'));
}

async function renderGroup(main, name) {
  const g = await getJson(`/groups/${seg(name)}`);
  const parked = h('div', { id: 'parked' });
  const detail = h('div', { id: 'event-detail' });
  const out = h('span', { id: 'replay-result' });

  async function loadParked() {
    const list = await getJson(`/groups/${seg(name)}/parked`, { limit: PARKED_LIMIT });
    if (!list.messages.length) {
      replace(parked, note('info', 'Nothing parked.'));
      return;
    }
    const head = eventHead(true);
    head.firstChild.append(h('th', {}, 'Deliveries'), h('th', {}, 'Reason'), h('th', {}, 'Parked at'));
    const rows = list.messages.map((m) => {
      const row = eventRow(m.event, (x) => replace(detail, eventDetail(x)), true);
      row.append(h('td', { class: 'num' }, String(m.delivery_count)), h('td', {}, m.reason), h('td', { class: 'time' }, formatTime(m.parked_at)));
      return row;
    });
    replace(parked, h('table', { class: 'events', id: 'parked-table' }, head, h('tbody', {}, rows)));
  }

  const replay = h('button', { type: 'button', id: 'replay-parked' }, 'Replay parked messages');
  replay.addEventListener('click', async () => {
    try {
      const r = await send('POST', `/groups/${seg(name)}/parked/replay`, { limit: PARKED_LIMIT });
      replace(out, `replayed ${r.replayed}`);
      await loadParked();
    } catch (e) {
      replace(out, note('error', e.message));
    }
  });
  replace(
    main,
    h('h2', {}, 'Group ', h('code', {}, g.name)),
    pairs([
      ['Source', JSON.stringify(g.settings.source)],
      ['Strategy', g.settings.strategy],
      ['Checkpoint', String(g.checkpoint)],
      ['Lag', `${g.lag_events} events, ${g.lag_seconds.toFixed(1)} s`],
      ['In flight', String(g.in_flight)],
      ['Consumers', String(g.consumers)],
      ['Acked', `${g.acked_total} (${g.acked_per_second.toFixed(1)}/s)`],
    ]),
    h('h3', {}, `Parked (${g.parked})`),
    h('p', {}, replay, ' ', out),
    parked,
    detail,
  );
  await loadParked();
}
