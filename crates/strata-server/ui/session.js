// Who the key is (GET /auth/whoami) and what the console lets it do.

import { getJson, getText, send, currentKey, ApiError } from './api.js';

const ROLES = ['read', 'write', 'admin'];

/** The key's identity: name, role, prefixes, covers_all, auth. */
export const session = {
  who: null,
  /** Set when the server has no whoami endpoint: actions stay enabled and the server decides. */
  unknown: false,
};

/** Asks the server who the current key is; throws ApiError (401 for a bad key). */
export async function identify() {
  try {
    session.who = await getJson('/auth/whoami');
    session.unknown = false;
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
    // A server without whoami: the role is probed, the prefixes unknown.
    session.who = { name: currentKey() ? '(key)' : '(none)', role: await probeRole(), prefixes: ['*'], covers_all: true, auth: 'probed' };
    session.unknown = true;
  }
  return session.who;
}

/**
 * The key's role, found with requests that change nothing: /metrics needs
 * admin, and POST /multi checks the write role before it reads its body (so
 * a body of the wrong content type is refused with 403 or 400, and never
 * appended).
 */
async function probeRole() {
  const refused = (e) => e instanceof ApiError && (e.status === 401 || e.status === 403);
  try {
    await getText('/metrics');
    return 'admin';
  } catch (e) {
    if (!refused(e)) throw e;
  }
  try {
    await send('POST', '/multi', undefined);
  } catch (e) {
    if (refused(e)) return 'read';
  }
  return 'write';
}

/** Whether the key's role is at least `role`. */
export function may(role) {
  const who = session.who;
  if (!who) return false;
  if (who.auth === 'none') return true;
  return ROLES.indexOf(who.role) >= ROLES.indexOf(role);
}

/** Whether the key covers `stream` (by its prefixes). */
export function covers(stream) {
  const who = session.who;
  if (!who || who.auth === 'none' || who.covers_all) return true;
  return (who.prefixes || []).some((p) => p === '*' || stream.startsWith(p));
}
