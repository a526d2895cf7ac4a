// Drives the web console (GET /ui) in headless Chromium with playwright-core.
// Run by crates/strata-server/tests/console_browser.rs, which starts the
// server and passes, in the environment:
//   STRATA_URL            the server's base URL
//   STRATA_ADMIN_KEY      an admin key for every stream
//   STRATA_WRITER_KEY     a write key for orders- and xss-
//   STRATA_READER_KEY     a read key for orders- only
//   STRATA_CHROMIUM       the Chromium executable
//   STRATA_SCREENSHOTS    where to save the screenshots
// It prints one line per step, the first-load size and time to interactive,
// and exits non-zero at the first failure.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const URL_BASE = need('STRATA_URL');
const ADMIN = need('STRATA_ADMIN_KEY');
const WRITER = need('STRATA_WRITER_KEY');
const READER = need('STRATA_READER_KEY');
const SHOTS = need('STRATA_SCREENSHOTS');
const CHROMIUM = need('STRATA_CHROMIUM');

/** How long one wait for the page may take, in ms. */
const STEP_TIMEOUT_MS = 15000;

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

async function api(method, path, key, body) {
  const init = { method, headers: { Authorization: 'Bearer ' + key } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(URL_BASE + path, init);
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const append = (stream, events, key = ADMIN) => api('POST', `/streams/${encodeURIComponent(stream)}`, key, { expected_version: 'any', events });

const XSS_SCRIPT = '<script>window.__pwned = "script"</script>';
const XSS_IMG = '"><img src=x onerror="window.__pwned=\'img\'">';

async function seed() {
  const placed = await append('orders-1', [{ id: '0190a3c4-1f2e-7000-8000-0000000000a1', type: 'OrderPlaced', data: { order: 1, items: [{ sku: 'A-1', qty: 2 }] }, metadata: { correlation_id: 'corr-42', user_id: 'ada' } }]);
  await append('orders-1', [{ type: 'OrderPaid', data: { order: 1, amount: 12.5 }, metadata: { correlation_id: 'corr-42', causation_id: '0190a3c4-1f2e-7000-8000-0000000000a1' } }]);
  await append('orders-1', [{ type: 'Blob', content_type: 'binary', data: Buffer.from('\x00\x01binary\xffdata').toString('base64') }]);
  for (let i = 2; i <= 4; i++) await append(`orders-${i}`, [{ type: 'OrderPlaced', data: { order: i } }]);
  await append('orders-big', Array.from({ length: 25 }, (_, i) => ({ type: 'Line', data: { line: i + 1 } })));
  await append('orders-9', [{ type: 'OrderPlaced', data: { order: 9 } }]);
  await api('DELETE', '/streams/orders-9', ADMIN);
  await append('audit-1', [{ type: 'Secret', data: { secret: 'not for readers' }, metadata: { correlation_id: 'corr-42' } }]);
  await append('xss-1', [
    { type: XSS_SCRIPT, data: { note: XSS_SCRIPT, img: XSS_IMG }, metadata: { correlation_id: XSS_IMG, source: XSS_SCRIPT } },
    { type: 'Injected', data: XSS_IMG },
  ]);
  // A consumer group with one parked message.
  await api('PUT', '/groups/orders-group', ADMIN, { source: { all: { stream_prefix: 'orders-' } } });
  const read = await api('POST', '/groups/orders-group/read', ADMIN, { max: 1, wait_ms: 5000 });
  check(read.messages.length === 1, 'the group delivers a message');
  await api('POST', '/groups/orders-group/nack', ADMIN, { ids: [read.messages[0].delivery_id], action: 'park', reason: 'test: parked on purpose' });
  return placed;
}

let step = 0;
function log(...args) {
  console.log(`[${++step}]`, ...args);
}

async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.problems = [];
  page.on('dialog', async (d) => {
    page.problems.push('a dialog opened: ' + d.message());
    await d.dismiss();
  });
  page.on('pageerror', (e) => page.problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) page.problems.push('console error: ' + m.text());
  });
  return { context, page };
}

async function signIn(page, key) {
  await page.goto(URL_BASE + '/ui');
  await page.waitForSelector('body[data-ready="key"]');
  await page.fill('#api-key', key);
  await page.click('#key-form button[type=submit]');
  await page.waitForSelector('#whoami');
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, name), fullPage: true });
  log('screenshot', name);
}

async function pageReady(page) {
  await page.waitForSelector('body[data-ready="page"]');
}

async function firstLoad(browser) {
  const { context, page } = await newPage(browser);
  const started = Date.now();
  await page.goto(URL_BASE + '/ui');
  await page.waitForSelector('body[data-ready="key"]');
  const wall = Date.now() - started;
  const m = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const ready = performance.getEntriesByName('strata-console-ready')[0];
    const all = [nav, ...res];
    return {
      files: all.length,
      transferred: all.reduce((n, e) => n + e.transferSize, 0),
      encoded: all.reduce((n, e) => n + e.encodedBodySize, 0),
      decoded: all.reduce((n, e) => n + e.decodedBodySize, 0),
      ready: ready ? ready.startTime : null,
      domContentLoaded: nav.domContentLoadedEventEnd,
    };
  });
  console.log(`FIRST LOAD: ${m.files} files, ${m.transferred} bytes transferred (${m.decoded} bytes of content), time to interactive ${m.ready.toFixed(1)} ms (DOMContentLoaded ${m.domContentLoaded.toFixed(1)} ms, wall ${wall} ms)`);
  check(m.decoded < 100 * 1024, `first load under 100 KB (${m.decoded})`);
  check(m.ready != null, 'the app marks itself ready');
  // Signed in, the first page of data.
  const signing = Date.now();
  await page.fill('#api-key', ADMIN);
  await page.click('#key-form button[type=submit]');
  await page.waitForSelector('body[data-ready="page"]');
  const signedIn = Date.now() - signing;
  // A reload revalidates every file: 304s, no bodies.
  await page.reload();
  await page.waitForSelector('body[data-ready="page"]');
  const again = await page.evaluate(() => {
    const all = [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource').filter((e) => e.name.includes('/ui/'))];
    return { files: all.length, transferred: all.reduce((n, e) => n + e.transferSize, 0), bodies: all.reduce((n, e) => n + e.encodedBodySize, 0) };
  });
  console.log(`SIGNED IN: the streams page drawn ${signedIn} ms after the key was sent; a reload (the key kept in sessionStorage) transferred ${again.transferred} bytes for ${again.files} console files (${again.bodies} bytes of bodies)`);
  await context.close();
}

/** Whether the server answers `path` (an endpoint that may not have landed). */
async function serves(path) {
  const r = await fetch(URL_BASE + path, { headers: { Authorization: 'Bearer ' + ADMIN } });
  return r.ok;
}

async function admin(browser, hasList) {
  const { context, page } = await newPage(browser);
  await signIn(page, ADMIN);
  await pageReady(page);
  const stored = await page.evaluate(() => ({ session: Object.keys(sessionStorage).length, local: localStorage.length, cookie: document.cookie }));
  check(stored.session === 1 && stored.local === 0 && stored.cookie === '', 'the key is in sessionStorage only: ' + JSON.stringify(stored));
  check(!page.url().includes(ADMIN), 'the key is not in the URL');

  // Find the stream.
  if (hasList) {
    await page.fill('#streams-prefix', 'orders-');
    await page.click('#streams-search button');
    // The unfiltered list already holds orders-1: wait for the search's
    // own list, not for a row the first one had too.
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('#streams-table tr.stream-row')];
      return rows.length > 0 && rows.every((r) => r.dataset.stream.startsWith('orders-'));
    });
    const names = await page.$$eval('#streams-table tr.stream-row', (rows) => rows.map((r) => r.dataset.stream));
    check(JSON.stringify(names) === JSON.stringify(['orders-1', 'orders-2', 'orders-3', 'orders-4', 'orders-9', 'orders-big']), 'the prefix search lists the orders streams: ' + names);
    check((await page.getAttribute('#streams-table tr[data-stream="orders-9"]', 'class')).includes('state-deleted'), 'a deleted stream shows its state');
    await shot(page, 'streams.png');
    await page.click('#streams-table tr[data-stream="orders-1"] a');
  } else {
    log('GET /streams is not on this server: opening the stream by name');
    await shot(page, 'streams.png');
    await page.fill('#open-stream-name', 'orders-1');
    await page.click('#open-stream button');
  }
  await page.waitForSelector('#stream-events tr[data-version="3"]');
  log('found stream orders-1');

  // Open an event, then the binary one.
  await page.click('#stream-events tr[data-version="3"] .open-event');
  await page.waitForSelector('.event-detail .hex');
  const hex = await page.textContent('.event-detail .hex');
  check(hex.includes('00 01 62 69 6e'), 'binary data shows as hex: ' + hex);
  await page.click('#stream-events tr[data-version="2"] .open-event');
  await page.waitForSelector('.event-detail pre.json');
  const json = await page.textContent('.event-detail pre.json');
  check(json.includes('"amount": 12.5'), 'JSON data is pretty-printed: ' + json);
  await shot(page, 'stream.png');
  // Paging, both ways, on a stream of 25 events (20 a page).
  await page.goto(URL_BASE + '/ui#/stream/orders-big');
  const versions = async (first, last) => {
    await page.waitForSelector(`#stream-events tbody tr:first-child[data-version="${first}"]`);
    const shown = await page.$$eval('#stream-events tbody tr', (rows) => rows.map((r) => Number(r.dataset.version)));
    check(shown[shown.length - 1] === last && shown.length === Math.abs(first - last) + 1, `versions ${first}..${last}: ${shown}`);
  };
  await versions(25, 6);
  await page.click('#next-page');
  await versions(5, 1);
  await page.click('#prev-page');
  await versions(25, 6);
  await page.click('#first-page');
  await versions(1, 20);
  await page.click('#next-page');
  await versions(21, 25);
  await page.click('#prev-page');
  await versions(1, 20);
  await page.goto(URL_BASE + '/ui#/stream/orders-1');
  await page.waitForSelector('#stream-events tr[data-version="2"]');
  log('opened events; paged forward and backward');

  // Follow the correlation link.
  await page.click('#stream-events tr[data-version="2"] .open-event');
  await page.click('.event-detail a[href^="#/all/correlation/"]');
  await page.waitForFunction(() => document.querySelectorAll('#all-events tr.event-row').length === 3);
  const correlated = await page.$$eval('#all-events tr.event-row td:first-child', (tds) => tds.map((t) => t.textContent));
  check(correlated.filter((s) => s === 'orders-1').length === 2 && correlated.includes('audit-1'), 'the correlation filter finds the related events: ' + correlated);
  await shot(page, 'event-correlation.png');
  // And the causation link back to the causing event.
  await page.goto(URL_BASE + '/ui#/stream/orders-1/2');
  await page.waitForSelector('.event-detail a[href^="#/all/causation/"]');
  await page.click('.event-detail a[href^="#/all/causation/"]');
  await page.waitForSelector('.event-detail[data-event-id="0190a3c4-1f2e-7000-8000-0000000000a1"]');
  log('followed correlation and causation links');

  // The live tail: one event live, then pause, two appended while paused, resume.
  await page.goto(URL_BASE + '/ui#/all');
  await pageReady(page);
  await page.click('#tail-toggle');
  await page.waitForSelector('#tail-status:has-text("live")');
  const first = await append('orders-live', [{ type: 'LiveOne', data: { n: 1 } }]);
  await page.waitForSelector(`#live-tail tr[data-position="${first.last_position}"]`);
  await page.click('#tail-toggle');
  await page.waitForSelector('#tail-status:has-text("paused")');
  const second = await append('orders-live', [{ type: 'WhilePaused', data: { n: 2 } }]);
  const third = await append('orders-live', [{ type: 'WhilePaused', data: { n: 3 } }]);
  await page.waitForTimeout(300);
  check((await page.textContent('#tail-count')) === '1', 'nothing arrives while paused');
  await page.click('#tail-toggle');
  await page.waitForSelector(`#live-tail tr[data-position="${third.last_position}"]`);
  const positions = await page.$$eval('#live-tail tbody tr', (rows) => rows.map((r) => Number(r.dataset.position)));
  check(JSON.stringify(positions) === JSON.stringify([third.last_position, second.last_position, first.last_position]), 'resume loses and repeats nothing: ' + positions);
  await shot(page, 'all-live.png');
  log('live tail: an event arrived live; pause and resume lost nothing');

  // Append through the form.
  await page.goto(URL_BASE + '/ui#/append');
  await pageReady(page);
  await page.fill('#append-stream', 'orders-form');
  await page.fill('#append-type', 'FormAppended');
  await page.fill('#append-expected', 'no_stream');
  await page.fill('#append-data', '{"via": "form"}');
  await page.click('#append-submit');
  await page.waitForSelector('#append-result:has-text("Appended at version 1")');
  const back = await api('GET', '/streams/orders-form', ADMIN);
  check(back.events.length === 1 && back.events[0].type === 'FormAppended' && back.events[0].data.via === 'form', 'the form appended');
  check((await page.inputValue('#append-expected')) === '1', 'the form moves the expected version on');
  await page.fill('#append-expected', 'no_stream');
  await page.click('#append-submit');
  await page.waitForSelector('#append-result .error');
  await shot(page, 'append.png');
  log('appended through the form; a wrong expected version is refused');

  // Health: traffic while the page polls, until the charts have points.
  await page.goto(URL_BASE + '/ui#/health');
  await pageReady(page);
  for (let i = 0; i < 12; i++) {
    await append('orders-load', [{ type: 'Tick', data: { i } }, { type: 'Tick', data: { i } }]);
    await page.waitForTimeout(500);
  }
  await page.waitForFunction(() => Number(document.querySelector('#chart-appends').dataset.points) >= 2);
  const drawn = await page.$$eval('svg.chart polyline', (ls) => ls.map((l) => l.getAttribute('points').trim().split(' ').length));
  check(drawn[0] >= 2 && drawn[1] >= 2, 'the appends and events charts have points: ' + drawn);
  const peak = await page.textContent('#chart-events .latest');
  check(!peak.startsWith('–'), 'the events chart shows a rate: ' + peak);
  const facts = await page.textContent('#health-facts');
  check(facts.includes('memory') && facts.includes('Head position'), 'store kind and head shown: ' + facts);
  const p50 = await page.textContent('#latency');
  check(/p50\s*[\d.]+ ms/.test(p50), 'latency percentiles shown: ' + p50);
  await shot(page, 'health.png');
  log('health: charts drawn with data; latency, store kind, head position shown');

  // Consumer groups: the parked message, replayed.
  await page.goto(URL_BASE + '/ui#/groups');
  await page.waitForSelector('#groups-table tr[data-group="orders-group"]');
  await page.click('#groups-table tr[data-group="orders-group"] a');
  await page.waitForSelector('#parked-table tr.event-row');
  await shot(page, 'groups.png');
  await page.click('#replay-parked');
  await page.waitForSelector('#replay-result:has-text("replayed 1")');
  log('groups: parked message listed and replayed');

  // XSS payloads stay text.
  const scriptsBefore = await page.evaluate(() => document.scripts.length);
  await page.goto(URL_BASE + '/ui#/stream/xss-1');
  await page.waitForSelector('#stream-events tr[data-version="2"]');
  await page.click('#stream-events tr[data-version="1"] .open-event');
  await page.waitForSelector('.event-detail');
  const shown = await page.textContent('.event-detail');
  check(shown.includes(XSS_SCRIPT) && shown.includes(XSS_IMG), 'the payloads show as text');
  await page.goto(URL_BASE + '/ui#/all');
  await pageReady(page);
  await page.goto(URL_BASE + '/ui#/stream/xss-1');
  await page.waitForSelector('#stream-events tr[data-version="2"]');
  await page.click('#stream-events tr[data-version="2"] .open-event');
  await page.waitForSelector('.event-detail:has-text("Injected")');
  await page.click('#stream-events tr[data-version="1"] .open-event');
  await page.waitForSelector('.event-detail:has-text("window.__pwned")');
  await page.waitForTimeout(300);
  const inert = await page.evaluate(() => ({
    pwned: window.__pwned,
    imgs: document.querySelectorAll('img').length,
    scripts: document.scripts.length,
  }));
  check(inert.pwned === undefined, 'no payload ran: ' + inert.pwned);
  check(inert.imgs === 0, 'no element was injected: ' + inert.imgs + ' img');
  check(inert.scripts === scriptsBefore, 'no script was injected');
  await shot(page, 'xss.png');
  log('XSS payloads stayed inert');

  check(page.problems.length === 0, 'no dialogs, page errors or console errors: ' + page.problems.join('; '));
  await context.close();
}

async function reader(browser, hasList, hasWhoami) {
  const { context, page } = await newPage(browser);
  await signIn(page, READER);
  await pageReady(page);
  const whoami = await page.textContent('#whoami');
  check(whoami.includes('read'), 'the reader is shown with its role: ' + whoami);
  if (hasWhoami) check(whoami.includes('reader') && whoami.includes('orders-'), 'the reader is shown with its name and prefixes: ' + whoami);
  else log('GET /auth/whoami is not on this server: the role was probed');
  check((await page.$('nav a[data-route="append"]')) === null && (await page.$('nav .nav-disabled[data-route="append"]')) !== null, 'append is disabled in the menu');
  await page.goto(URL_BASE + '/ui#/append');
  await pageReady(page);
  check((await page.$('#append-form')) === null, 'the reader gets no append form');
  if (hasList) {
    await page.goto(URL_BASE + '/ui#/streams');
    await pageReady(page);
    await page.click('#streams-search button');
    await page.waitForSelector('#streams-table tr.stream-row');
    const names = await page.$$eval('#streams-table tr.stream-row', (rows) => rows.map((r) => r.dataset.stream));
    check(names.length > 0 && names.every((n) => n.startsWith('orders-')), 'the reader lists only its streams: ' + names);
  }
  await page.goto(URL_BASE + '/ui#/all');
  await pageReady(page);
  await page.waitForSelector('#all-events tr.event-row');
  const streams = await page.$$eval('#all-events tr.event-row td:first-child', (tds) => tds.map((t) => t.textContent));
  check(streams.length > 0 && streams.every((s) => s.startsWith('orders-')), 'the reader sees only orders- in $all: ' + [...new Set(streams)]);
  await page.goto(URL_BASE + '/ui#/stream/audit-1');
  await page.waitForSelector('.note.error');
  const refused = await page.textContent('main');
  check(!refused.includes('not for readers') && refused.includes('does not cover'), 'another prefix is refused: ' + refused);
  await shot(page, 'reader.png');
  await page.goto(URL_BASE + '/ui#/health');
  await pageReady(page);
  check((await page.$('svg.chart')) === null, 'the reader gets no metrics');
  log('reader: scoped to orders-, append disabled, other prefixes refused');
  // A wrong key is refused and forgotten.
  await page.click('#sign-out');
  await page.fill('#api-key', 'not-a-key');
  await page.click('#key-form button[type=submit]');
  await page.waitForSelector('#key-form .note.error');
  check((await page.evaluate(() => sessionStorage.length)) === 0, 'a refused key is not kept');
  await context.close();
}

async function writer(browser) {
  const { context, page } = await newPage(browser);
  await signIn(page, WRITER);
  await pageReady(page);
  check((await page.$('nav a[data-route="append"]')) !== null, 'the writer may append');
  await page.goto(URL_BASE + '/ui#/groups');
  await pageReady(page);
  check((await page.$('#groups-table')) === null, 'groups need an admin key');
  await context.close();
  log('writer: append enabled, admin pages not');
}

mkdirSync(SHOTS, { recursive: true });
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
try {
  await seed();
  log('seeded events through the API');
  const hasList = await serves('/streams?limit=1');
  const hasWhoami = await serves('/auth/whoami');
  await firstLoad(browser);
  await admin(browser, hasList);
  await reader(browser, hasList, hasWhoami);
  await writer(browser);
  const missing = [hasList ? null : 'GET /streams (streams opened by name)', hasWhoami ? null : 'GET /auth/whoami (role probed)'].filter(Boolean);
  console.log('CONSOLE OK' + (missing.length ? ' without ' + missing.join(', ') : ' (every page, with GET /streams and GET /auth/whoami)'));
} finally {
  await browser.close();
}
