// @ts-check
// Small DOM and formatting helpers of the console page. Values are always put in as text or
// attributes, never parsed as HTML, so nothing from the API can inject markup.

/** @typedef {string | number | boolean | null | undefined} AttrValue */
/** @typedef {Readonly<Record<string, AttrValue | ((ev: Event) => void)>>} Attrs */
/** @typedef {Node | string | number | false | null | undefined} Child */

/**
 * The page's element with this id, which must be a `type` (index.html has every id the scripts use).
 * @template {Element} T
 * @param {string} id
 * @param {{ new (): T, prototype: T }} type
 * @returns {T}
 */
export function byId(id, type) {
  const el = document.getElementById(id);
  if (el instanceof type) return el;
  throw new Error(`the page has no ${type.name} #${id}`);
}

/** @param {string} id */
export const $ = (id) => byId(id, HTMLElement);

/**
 * Creates an element: h('td', { class: 'num' }, 'text', childNode). An `on…` attribute adds a listener.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs | null} [attrs]
 * @param {...(Child | readonly Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (typeof v === 'function') {
      if (!k.startsWith('on')) throw new TypeError(`h(${tag}): only an on… attribute takes a function, not ${k}`);
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') el.className = String(v);
    else if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/**
 * @template {keyof SVGElementTagNameMap} K
 * @param {K} tag
 * @param {Readonly<Record<string, string | number>>} [attrs]
 * @param {...(Node | string)} children
 * @returns {SVGElementTagNameMap[K]}
 */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs ?? {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(c));
  return el;
}

/** @param {string | null | undefined} iso */
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  /** @param {number} n */
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** @param {number | null | undefined} ms */
export function fmtMs(ms) {
  if (ms === undefined || ms === null) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** @type {Readonly<Record<string, string>>} */
export const STATUS_TEXT = {
  succeeded: 'succeeded',
  running: 'running',
  refused: 'refused',
  'rolled-back': 'rolled back',
  'needs-operator': 'NEEDS OPERATOR',
  resumed: 'resumed',
  quiesced: 'STILL QUIESCED',
  quiescing: 'STILL QUIESCING',
  failed: 'failed',
};

/**
 * A status as colour AND words, so it reads without colour too.
 * @param {string} status
 * @param {string} [text]
 */
export function badge(status, text) {
  return h('span', { class: `badge status-${status}` }, text ?? STATUS_TEXT[status] ?? status);
}

/** @param {string | null | undefined} v */
export function version(v) {
  return v ?? 'none';
}

/** A refusal of the console's API: its `{ error: { code, message } }`, or the HTTP status alone. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string | undefined} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/**
 * JSON the console's server wrote. `T` is the type the endpoint answers with: the views of
 * src/console-server/backend.ts, as src/console-server/api-handler.ts sends them. This is the one place the page
 * takes the server at its word, as it has nothing else to check the answer against.
 * @template T
 * @param {string} text
 * @returns {T}
 */
export function fromServer(text) {
  /** @type {unknown} */
  const value = JSON.parse(text);
  return /** @type {T} */ (value);
}

/**
 * @template T
 * @param {string} token
 * @param {string} path
 * @param {RequestInit} [init]
 * @returns {Promise<T>}
 */
export async function api(token, path, init) {
  const headers = new Headers(init?.headers);
  headers.set('X-Safeshift-Token', token);
  const res = await fetch(path, { ...init, credentials: 'same-origin', headers });
  const text = await res.text();
  if (!res.ok) {
    /** @type {{ error?: { code?: string, message?: string } }} */
    let body = {};
    try {
      body = fromServer(text);
    } catch {
      // Not JSON (a proxy's error page, say): the status says enough.
    }
    throw new ApiError(res.status, body.error?.code, body.error?.message ?? `HTTP ${res.status}`);
  }
  return fromServer(text);
}

/**
 * A table that becomes a list of cards on a narrow window: each cell carries its column's name,
 * which the stylesheet shows beside the value when the header row is hidden.
 * @param {readonly string[]} headers
 * @param {readonly { class?: string | null, cells: readonly Child[] }[]} rows
 */
export function cardTable(headers, rows) {
  return h(
    'div',
    { class: 'scroll' },
    h(
      'table',
      { class: 'cards' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          headers.map((t) => h('th', { scope: 'col' }, t)),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((row) =>
          h(
            'tr',
            { class: row.class },
            row.cells.map((c, i) => h('td', { 'data-label': headers[i], class: headers[i] === 'API' ? 'api' : null }, c)),
          ),
        ),
      ),
    ),
  );
}
