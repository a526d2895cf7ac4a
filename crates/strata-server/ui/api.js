// The Strata HTTP API as the console calls it, with the key the user typed.
// The key lives in memory and in sessionStorage (so a reload keeps it in this
// tab only); it is sent in the Authorization header and nowhere else.

const KEY_ITEM = 'strata-console-key';

let key = sessionStorage.getItem(KEY_ITEM) || '';

/** The key in use ('' for none). */
export function currentKey() {
  return key;
}

/** Sets (or clears, with '') the key. */
export function setKey(k) {
  key = k;
  if (k) sessionStorage.setItem(KEY_ITEM, k);
  else sessionStorage.removeItem(KEY_ITEM);
}

function headers(extra = {}) {
  const out = { ...extra };
  if (key) out.Authorization = 'Bearer ' + key;
  return out;
}

/** An API error: the HTTP status and the server's `error` kind and message. */
export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message || kind || 'HTTP ' + status);
    this.status = status;
    this.kind = kind;
  }
}

async function fail(resp) {
  let body = {};
  try {
    body = await resp.json();
  } catch {
    // not JSON
  }
  return new ApiError(resp.status, body.error, body.message);
}

/** GET `path` (with `params`), as JSON. */
export async function getJson(path, params = {}) {
  const resp = await fetch(withQuery(path, params), { headers: headers() });
  if (!resp.ok) throw await fail(resp);
  return resp.json();
}

/** GET `path` as text. */
export async function getText(path) {
  const resp = await fetch(path, { headers: headers() });
  if (!resp.ok) throw await fail(resp);
  return resp.text();
}

/** `method` `path` with a JSON `body` (or none), as JSON (null for 204). */
export async function send(method, path, body, params = {}) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(withQuery(path, params), init);
  if (!resp.ok) throw await fail(resp);
  return resp.status === 204 ? null : resp.json();
}

/** `path` with the non-empty `params` as a query string. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? path + '?' + s : path;
}

/** A stream name as one path segment. */
export function seg(name) {
  return encodeURIComponent(name);
}

/**
 * Follows a server-sent-event endpoint with fetch() (EventSource cannot send
 * the Authorization header). Calls `onMessage({event, id, data})` per message
 * until `signal` aborts or the server ends the stream; resolves then.
 */
export async function followSse(path, params, signal, onMessage) {
  const resp = await fetch(withQuery(path, params), {
    headers: headers({ Accept: 'text/event-stream' }),
    signal,
  });
  if (!resp.ok) throw await fail(resp);
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const message = parseSseBlock(block);
        if (message) onMessage(message);
      }
    }
  } catch (e) {
    if (signal.aborted) return;
    throw e;
  }
}

/** One SSE message from its lines; null for a comment-only block. */
export function parseSseBlock(block) {
  const m = { event: 'message', id: null, data: [] };
  let any = false;
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    any = true;
    if (field === 'event') m.event = value;
    else if (field === 'id') m.id = value;
    else if (field === 'data') m.data.push(value);
  }
  if (!any) return null;
  return { event: m.event, id: m.id, data: m.data.join('\n') };
}
