// Building DOM nodes. Every piece of text goes in as a text node: nothing
// here parses HTML, so data from the server can never become markup.

/** An element `tag` with attributes `attrs` and `children` (nodes or text). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element, like `h`. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.setAttribute('class', v);
    } else if (k in el && typeof el[k] !== 'function' && !(el instanceof SVGElement)) {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A link to a console route (`#/...`). */
export function link(route, ...children) {
  return h('a', { href: '#' + route }, ...children);
}

/** A message box: `kind` is `error` or `info`. */
export function note(kind, text) {
  return h('p', { class: 'note ' + kind, role: kind === 'error' ? 'alert' : 'status' }, text);
}

/** A definition list from [label, value] pairs. */
export function pairs(rows) {
  return h('dl', { class: 'pairs' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}
