// #/append: append one event with an expected version (keys that may write).

import { h, replace, note, link } from './dom.js';
import { send, seg } from './api.js';
import { may } from './session.js';

export async function render(main) {
  if (!may('write')) {
    replace(main, h('h2', {}, 'Append'), note('info', 'This key may not append (it needs the write role).'));
    return;
  }
  const stream = h('input', { name: 'stream', id: 'append-stream', required: true, placeholder: 'stream' });
  const type = h('input', { name: 'type', id: 'append-type', required: true, placeholder: 'event type' });
  const expected = h('input', { name: 'expected_version', id: 'append-expected', value: 'any', title: 'any, no_stream, exists or a version number' });
  const data = h('textarea', { name: 'data', id: 'append-data', rows: 8, value: '{}' });
  const correlation = h('input', { name: 'correlation_id', id: 'append-correlation', placeholder: 'correlation id (optional)' });
  const out = h('div', { id: 'append-result' });
  const form = h(
    'form',
    { id: 'append-form', class: 'card stack' },
    h('label', {}, 'Stream ', stream),
    h('label', {}, 'Type ', type),
    h('label', {}, 'Expected version ', expected),
    h('label', {}, 'Correlation id ', correlation),
    h('label', {}, 'Data (JSON) ', data),
    h('button', { type: 'submit', id: 'append-submit' }, 'Append'),
    out,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    let payload;
    try {
      payload = JSON.parse(data.value);
    } catch (e) {
      replace(out, note('error', 'The data is not JSON: ' + e.message));
      return;
    }
    const ev1 = { type: type.value.trim(), data: payload };
    if (correlation.value.trim()) ev1.metadata = { correlation_id: correlation.value.trim() };
    const exp = expected.value.trim() || 'any';
    const body = { expected_version: /^\d+$/.test(exp) ? Number(exp) : exp, events: [ev1] };
    try {
      const r = await send('POST', `/streams/${seg(stream.value.trim())}`, body);
      replace(out, note('info', `Appended at version ${r.next_expected_version}, position ${r.last_position}. `), link(`/stream/${seg(stream.value.trim())}/${r.next_expected_version}`, 'Open it'));
      expected.value = String(r.next_expected_version);
    } catch (e) {
      replace(out, note('error', e.message));
    }
  });
  replace(main, h('h2', {}, 'Append an event'), form);
}
