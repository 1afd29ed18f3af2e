// Small DOM and formatting helpers of the console page. Values are always put in as text or
// attributes, never parsed as HTML, so nothing from the API can inject markup.

export const $ = (id) => document.getElementById(id);

/** Creates an element: h('td', { class: 'num' }, 'text', childNode). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtMs(ms) {
  if (ms === undefined || ms === null) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export const STATUS_TEXT = {
  succeeded: 'succeeded', running: 'running', refused: 'refused', 'rolled-back': 'rolled back',
  'needs-operator': 'NEEDS OPERATOR', resumed: 'resumed', quiesced: 'STILL QUIESCED', quiescing: 'STILL QUIESCING', failed: 'failed',
};

/** A status as colour AND words, so it reads without colour too. */
export function badge(status, text) {
  return h('span', { class: `badge status-${status}` }, text || STATUS_TEXT[status] || status);
}

export function version(v) {
  return v === null || v === undefined ? 'none' : v;
}

export async function api(token, path, init) {
  const res = await fetch(path, { ...init, credentials: 'same-origin', headers: { 'X-Safeshift-Token': token, ...(init && init.headers) } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = new Error((body.error && body.error.message) || `HTTP ${res.status}`);
    e.code = body.error && body.error.code;
    e.status = res.status;
    throw e;
  }
  return body;
}

/**
 * A table that becomes a list of cards on a narrow window: each cell carries its column's name,
 * which the stylesheet shows beside the value when the header row is hidden.
 */
export function cardTable(headers, rows) {
  return h('div', { class: 'scroll' }, h('table', { class: 'cards' },
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.map((row) => h('tr', { class: row.class || null },
      row.cells.map((c, i) => h('td', { 'data-label': headers[i], class: headers[i] === 'API' ? 'api' : null }, c))))),
  ));
}
