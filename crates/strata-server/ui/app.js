// The console's shell: key entry, navigation and the hash router. Each page
// module exports `render(main, args)` and may return a cleanup function.

import { h, replace, note } from './dom.js';
import { currentKey, setKey, ApiError } from './api.js';
import { identify, may, session } from './session.js';
import * as streams from './page-streams.js';
import * as stream from './page-stream.js';
import * as all from './page-all.js';
import * as appendPage from './page-append.js';
import * as health from './page-health.js';
import * as groups from './page-groups.js';

const ROUTES = {
  streams,
  stream,
  all,
  append: appendPage,
  health,
  groups,
};

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
let cleanup = null;

function renderNav() {
  const items = [
    ['streams', 'Streams'],
    ['all', '$all'],
    ['append', 'Append', !may('write')],
    ['health', 'Health'],
    ['groups', 'Groups'],
  ];
  replace(
    nav,
    items.map(([route, label, disabled]) =>
      disabled
        ? h('span', { class: 'nav-disabled', title: 'this key may not write', 'data-route': route }, label)
        : h('a', { href: '#/' + route, 'data-route': route }, label),
    ),
  );
  const w = session.who;
  const prefixes = session.unknown ? 'prefixes unknown' : w.covers_all ? 'all streams' : (w.prefixes || []).join(', ');
  const scope = w.auth === 'none' ? 'no keys configured' : `${w.name} · ${w.role} · ${prefixes}`;
  replace(who, h('span', { id: 'whoami' }, scope), ' ', h('button', { type: 'button', id: 'sign-out', onclick: signOut }, 'Forget key'));
}

function signOut() {
  setKey('');
  session.who = null;
  showKeyForm();
}

function showKeyForm(message) {
  if (cleanup) cleanup();
  cleanup = null;
  replace(nav);
  replace(who);
  const input = h('input', { type: 'password', id: 'api-key', name: 'api-key', autocomplete: 'off', placeholder: 'API key (empty when the server has none)' });
  const form = h(
    'form',
    { id: 'key-form', class: 'card' },
    h('h2', {}, 'Sign in with an API key'),
    h('p', {}, 'The key stays in this tab (memory and sessionStorage) and is sent as an Authorization header.'),
    input,
    ' ',
    h('button', { type: 'submit' }, 'Use key'),
    message ? note('error', message) : null,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setKey(input.value.trim());
    await start();
  });
  replace(main, form);
  document.body.dataset.ready = 'key';
  markReady();
  input.focus();
}

async function start() {
  try {
    await identify();
  } catch (e) {
    const hadKey = currentKey() !== '';
    setKey('');
    if (e instanceof ApiError && e.status === 401) showKeyForm(hadKey ? 'The server does not know this key.' : null);
    else showKeyForm('Cannot reach the server: ' + e.message);
    return;
  }
  renderNav();
  if (!location.hash || location.hash === '#' || location.hash === '#/') location.hash = '#/streams';
  else route();
}

async function route() {
  if (!session.who) return;
  if (cleanup) cleanup();
  cleanup = null;
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  const name = parts[0] || 'streams';
  const args = parts.slice(1).map(decodeURIComponent);
  const page = ROUTES[name];
  for (const a of nav.querySelectorAll('[data-route]')) a.classList.toggle('active', a.dataset.route === name);
  document.body.dataset.ready = 'loading';
  if (!page) {
    replace(main, note('error', 'No such page: ' + name));
    document.body.dataset.ready = 'page';
    return;
  }
  try {
    cleanup = (await page.render(main, args)) || null;
  } catch (e) {
    replace(main, note('error', e.message));
  }
  document.body.dataset.ready = 'page';
  markReady();
}

let readyMarked = false;

/** The first page is drawn: the app is interactive (tests measure to here). */
function markReady() {
  if (readyMarked) return;
  readyMarked = true;
  performance.mark('strata-console-ready');
}

window.addEventListener('hashchange', route);
// With a key from this tab's session, or none (a server without keys
// answers whoami anonymously), go straight in; a 401 shows the key form.
start();
