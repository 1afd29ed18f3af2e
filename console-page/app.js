// @ts-check
// The safeshift console page: loading, the database list, and the Restore flow (confirm, start,
// follow live). Plain JavaScript modules, no build step, nothing fetched from elsewhere.
import { $, api as request, ApiError, badge, byId, fmtMs, fmtTime, fromServer, h, STATUS_TEXT, version } from './dom.js';
import { renderOverview, renderQuiesced, renderRehearsals, renderRuns, renderSnapshots } from './views.js';
/** @import { DatabaseView, QuiesceView, RehearsalView, RunProgress, RunView, SnapshotView } from '../src/console-server/backend.ts' */
/** @import { RunError, RunStatus } from '../src/ports.ts' */

/**
 * The restore this page follows: one it started, or one it found running.
 * @typedef {object} Following
 * @property {string} runId
 * @property {string} database
 * @property {SnapshotView | null} snapshot the snapshot it brings back, when this page started it
 * @property {string | null} [toVersion]
 * @property {readonly { readonly state: string, readonly enteredAt: string }[]} states
 * @property {boolean} done
 * @property {RunStatus} [status]
 * @property {RunError} [error]
 * @property {string} [safetySnapshotId]
 */

const TOKEN = pageToken();
const REFRESH_MS = 10_000;

/**
 * @type {{
 *   info?: { readonly description: string },
 *   databases: readonly DatabaseView[],
 *   selected: string | null,
 *   snapshots?: readonly SnapshotView[],
 *   openRuns: Set<string>,
 *   restore: Following | null,
 *   returnFocus: HTMLElement | null,
 *   pending: { readonly database: string, readonly snapshot: SnapshotView } | null,
 * }}
 */
const state = {
  databases: [],
  selected: null,
  /** Runs whose details the operator opened: kept open across refreshes. */
  openRuns: new Set(),
  /** The restore this page started and is following. */
  restore: null,
  /** The button that opened the dialog, which gets the focus back when it closes. */
  returnFocus: null,
  pending: null,
};

/** @param {string} name */
const q = (name) => `?database=${encodeURIComponent(name)}`;
/** @param {string} runId */
const runPath = (runId) => `/api/runs/${encodeURIComponent(runId)}`;

/** The console's API, each endpoint with what src/console-server/api-handler.ts answers it with. */
const api = {
  /** @returns {Promise<{ readonly description: string, readonly exposed: boolean }>} */
  info: () => request(TOKEN, '/api/info'),
  /** @returns {Promise<DatabaseView[]>} */
  databases: () => request(TOKEN, '/api/databases'),
  /** @param {string} database @returns {Promise<RunView[]>} */
  runs: (database) => request(TOKEN, `/api/runs${q(database)}`),
  /** @param {string} runId @returns {Promise<RunView>} */
  run: (runId) => request(TOKEN, runPath(runId)),
  /** @param {string} database @returns {Promise<SnapshotView[]>} */
  snapshots: (database) => request(TOKEN, `/api/snapshots${q(database)}`),
  /** @param {string} database @returns {Promise<QuiesceView[]>} */
  quiesced: (database) => request(TOKEN, `/api/quiesced${q(database)}`),
  /** @param {string} database @returns {Promise<RehearsalView[]>} */
  rehearsals: (database) => request(TOKEN, `/api/rehearsals${q(database)}`),
  /**
   * @param {{ readonly database: string, readonly snapshotId: string, readonly confirm: string }} body
   * @returns {Promise<{ readonly runId: string }>}
   */
  restore: (body) => request(TOKEN, '/api/restore', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }),
};

/** The session's token, which the server puts in the page. */
function pageToken() {
  const meta = document.querySelector('meta[name="safeshift-token"]');
  if (!(meta instanceof HTMLMetaElement)) throw new Error('the page has no safeshift-token');
  return meta.content;
}

/** @param {unknown} e */
const messageOf = (e) => (e instanceof Error ? e.message : String(e));
/** The database named in the address (#db=NAME), or ''. */
const databaseInHash = () => decodeURIComponent(/^#db=(.+)$/.exec(location.hash)?.[1] ?? '');

// ---------------------------------------------------------------------------------------------
// Loading and rendering

async function refresh() {
  try {
    const [info, databases] = await Promise.all([state.info ?? api.info(), api.databases()]);
    state.info = info;
    state.databases = databases;
    $('source').textContent = `Reading ${info.description}`;
    const fromHash = databaseInHash();
    if (!state.selected || !databases.some((d) => d.name === state.selected)) {
      state.selected = databases.some((d) => d.name === fromHash) ? fromHash : (databases[0]?.name ?? null);
    }
    const focused = focusKey();
    renderAlerts();
    renderDatabaseList();
    await renderSelected();
    restoreFocus(focused);
    $('updated').textContent = `Updated ${fmtTime(new Date().toISOString()).slice(11)}`;
  } catch (e) {
    $('updated').textContent = `Could not refresh: ${messageOf(e)}`;
  }
}

/**
 * A refresh rebuilds the lists; these two keep a keyboard user's place: which control had the focus
 * (by what it stands for, not by node), and giving it back to its replacement.
 */
function focusKey() {
  const el = document.activeElement;
  if (!(el instanceof HTMLElement) || el === document.body) return null;
  if (el.dataset.snapshot) return `button[data-snapshot="${CSS.escape(el.dataset.snapshot)}"]`;
  if (el.dataset.database) return `button[data-database="${CSS.escape(el.dataset.database)}"]`;
  const run = el.tagName === 'SUMMARY' ? el.parentElement?.dataset.run : undefined;
  return run ? `details[data-run="${CSS.escape(run)}"] > summary` : null;
}

/** @param {string | null} selector */
function restoreFocus(selector) {
  if (!selector || (document.activeElement && document.activeElement !== document.body)) return;
  const el = document.querySelector(selector);
  if (el instanceof HTMLElement) el.focus();
}

/** The loud banner. Replaced only when it changes: it is an alert region, read out at each change. */
function renderAlerts() {
  const box = $('alerts');
  const loud = state.databases.filter((d) => d.stillQuiesced > 0);
  const total = loud.reduce((n, d) => n + d.stillQuiesced, 0);
  const banner =
    loud.length === 0
      ? null
      : h(
          'div',
          { class: 'alert-loud' },
          `⚠ ${total} API${total === 1 ? ' is' : 's are'} STILL QUIESCED: writes to ${loud.length === 1 ? loud[0]?.name : 'these databases'} are stopped.`,
          h(
            'ul',
            {},
            loud.map((d) =>
              h(
                'li',
                {},
                `${d.name}: ${d.stillQuiesced} still quiesced`,
                d.lock
                  ? ` (run ${d.lock.owner} holds the database${d.lock.stale ? ', its lock is STALE' : ''})`
                  : ' (no run holds the database: it needs an operator)',
              ),
            ),
          ),
        );
  if ((banner ? banner.textContent : '') === box.textContent) return;
  box.replaceChildren(...(banner ? [banner] : []));
}

function renderDatabaseList() {
  const list = $('database-list');
  $('databases-empty').hidden = state.databases.length > 0;
  list.replaceChildren(
    ...state.databases.map((d) =>
      h(
        'li',
        {},
        h(
          'button',
          {
            type: 'button',
            class: 'db-button',
            'aria-current': d.name === state.selected ? 'true' : 'false',
            'data-database': d.name,
            onclick: () => {
              selectDatabase(d.name);
            },
          },
          h('span', { class: 'db-name' }, d.name),
          h('span', { class: 'db-meta' }, `schema ${version(d.schemaVersion)} · compatible from ${version(d.compatibleFrom)}`),
          h(
            'span',
            { class: 'db-flags' },
            d.lastRun ? badge(d.lastRun.status, `last ${d.lastRun.kind}: ${STATUS_TEXT[d.lastRun.status] ?? d.lastRun.status}`) : null,
            d.stillQuiesced > 0 ? badge('still', `${d.stillQuiesced} STILL QUIESCED`) : null,
            d.lock ? lockBadge(d.lock) : null,
          ),
        ),
      ),
    ),
  );
}

/**
 * A held lock: a run going on, an interrupted one that waits for `safeshift recover` (loud), or a stale one.
 * @param {import('../src/console-server/backend.ts').LockView} lock
 */
function lockBadge(lock) {
  if (lock.interrupted) return h('span', { title: lock.interrupted }, badge('needs-operator', 'RUN INTERRUPTED: safeshift recover'));
  return badge('running', lock.stale ? 'STALE LOCK' : 'run in progress');
}

/** @param {string} name */
function selectDatabase(name) {
  state.selected = name;
  history.replaceState(null, '', `#db=${encodeURIComponent(name)}`);
  renderDatabaseList();
  void renderSelected().then(() => {
    $('main').focus();
  });
}

async function renderSelected() {
  const d = state.databases.find((x) => x.name === state.selected);
  $('pick-database').hidden = !!d;
  for (const id of ['overview', 'snapshots', 'quiesced', 'runs', 'rehearsals']) $(id).hidden = !d;
  if (!d) return;
  const [runs, snapshots, quiesced, rehearsals] = await Promise.all([api.runs(d.name), api.snapshots(d.name), api.quiesced(d.name), api.rehearsals(d.name)]);
  if (state.selected !== d.name) return; // the operator picked another one meanwhile
  state.snapshots = snapshots;
  adoptRunningRestore(runs);
  const busy = !!d.lock || (!!state.restore && !state.restore.done && state.restore.database === d.name);
  renderOverview(d);
  renderSnapshots(d, snapshots, { busy, onRestore: openRestore });
  renderQuiesced(quiesced);
  renderRuns(runs, state.openRuns);
  renderRehearsals(rehearsals);
}

// ---------------------------------------------------------------------------------------------
// Restore: confirm, start, follow

const confirmInput = () => byId('restore-confirm', HTMLInputElement);
const goButton = () => byId('restore-go', HTMLButtonElement);
const dialog = () => byId('restore-dialog', HTMLDialogElement);

/**
 * @param {DatabaseView} d
 * @param {SnapshotView} s
 * @param {HTMLElement} button
 */
function openRestore(d, s, button) {
  state.pending = { database: d.name, snapshot: s };
  state.returnFocus = button;
  $('restore-title').textContent = `Restore ${d.name} to snapshot ${s.snapshotId}?`;
  const quiesces = d.restoreQuiesces;
  $('restore-what').replaceChildren(
    ...[
      h('p', {}, 'This will:'),
      h(
        'ul',
        {},
        h(
          'li',
          {},
          quiesces.length > 0 ? `Stop the APIs that write to ${d.name}: ${quiesces.join(', ')}.` : `Stop no API: none was recorded as quiesced for ${d.name}.`,
        ),
        h(
          'li',
          {},
          h('strong', {}, `Set the data written since ${fmtTime(s.createdAt)} aside in a safety snapshot`),
          ` of ${d.name} as it is now, so this restore can itself be undone.`,
        ),
        h(
          'li',
          {},
          `Replace ${d.name} (schema version ${version(d.schemaVersion)}) with the data of the snapshot, ` +
            `which holds schema version ${version(s.schemaVersion)}.`,
        ),
        h('li', {}, 'Verify it, then resume the APIs exactly as they were.'),
      ),
      quiesces.length > 0
        ? null
        : h('p', { class: 'warning-note' }, 'Without an API stopped, writes made while the restore runs may end up only in the safety snapshot.'),
    ].filter((el) => el !== null),
  );
  $('restore-name').textContent = d.name;
  confirmInput().value = '';
  $('restore-error').textContent = '';
  goButton().disabled = true;
  dialog().showModal();
  confirmInput().focus();
}

async function confirmRestore() {
  const p = state.pending;
  const typed = confirmInput().value;
  if (p?.database !== typed) {
    $('restore-error').textContent = `Type ${p ? p.database : 'the database name'} exactly.`;
    return;
  }
  goButton().disabled = true;
  try {
    const started = await api.restore({ database: p.database, snapshotId: p.snapshot.snapshotId, confirm: typed });
    /** @type {Following} */
    const restore = { runId: started.runId, database: p.database, snapshot: p.snapshot, states: [], done: false };
    state.restore = restore;
    state.returnFocus = $('progress-heading');
    dialog().close();
    showProgress();
    follow(restore);
    void refresh();
  } catch (e) {
    $('restore-error').textContent = e instanceof ApiError && e.code ? `${e.code}: ${e.message}` : messageOf(e);
    goButton().disabled = confirmInput().value !== p.database;
  }
}

/**
 * After a reload, a restore still running (from this page or elsewhere) is followed again.
 * @param {readonly RunView[]} runs
 */
function adoptRunningRestore(runs) {
  if (state.restore && !state.restore.done) return;
  const running = runs.find((r) => r.kind === 'restore' && r.status === 'running');
  if (!running) return;
  /** @type {Following} */
  const restore = { runId: running.runId, database: running.database, snapshot: null, toVersion: running.toVersion, states: running.timeline, done: false };
  state.restore = restore;
  showProgress();
  follow(restore);
}

function showProgress() {
  const r = state.restore;
  if (!r) return;
  const section = $('restore-progress');
  section.hidden = false;
  section.dataset.status = r.done ? (r.status === 'succeeded' ? 'succeeded' : 'failed') : 'running';
  $('progress-heading').textContent = r.snapshot
    ? `Restore of ${r.database} to ${r.snapshot.snapshotId}`
    : `Restore of ${r.database} (run ${r.runId.slice(0, 8)})`;
  $('progress-dismiss').hidden = !r.done;
  const states = r.states;
  $('progress-states').replaceChildren(
    ...states.map((s, i) => {
      const next = states[i + 1];
      const ms = next ? Date.parse(next.enteredAt) - Date.parse(s.enteredAt) : undefined;
      return h(
        'li',
        { class: !next && !r.done ? 'current' : null },
        s.state,
        h('span', { class: 'muted small' }, ms !== undefined ? ` ${fmtMs(ms)}` : r.done ? '' : ' …'),
      );
    }),
  );
  const summary = $('progress-summary');
  const current = states.at(-1);
  if (!r.done) {
    summary.replaceChildren(badge('running'), ` ${current ? `now in ${current.state}` : 'starting'} (run ${r.runId})`);
  } else if (r.status === 'succeeded') {
    const safety = r.safetySnapshotId ?? state.snapshots?.find((s) => s.runId === r.runId && s.kind === 'safety')?.snapshotId;
    summary.replaceChildren(
      badge('succeeded', 'restore succeeded'),
      r.snapshot
        ? ` ${r.database} now holds the data of ${r.snapshot.snapshotId} (schema version ${version(r.snapshot.schemaVersion)}).`
        : ` ${r.database} now holds the data of the snapshot (schema version ${version(r.toVersion)}).`,
      safety ? ` The data it held before is kept in safety snapshot ${safety}.` : ' The data it held before is kept in a safety snapshot.',
    );
  } else {
    summary.replaceChildren(
      badge(r.status ?? 'needs-operator'),
      ` ${r.error ? `${r.error.code}: ${r.error.message}` : 'The restore did not succeed.'} See the run below.`,
    );
  }
}

/**
 * Follows the run live over Server-Sent Events; if the stream breaks, polls the run instead.
 * @param {Following} r
 */
function follow(r) {
  const source = new EventSource(`${runPath(r.runId)}/events`);
  source.addEventListener('progress', (/** @type {MessageEvent<string>} */ ev) => {
    /** @type {RunProgress} */
    const p = fromServer(ev.data);
    r.states = p.states;
    showProgress();
  });
  source.addEventListener('end', (/** @type {MessageEvent<string>} */ ev) => {
    source.close();
    /** @type {RunView | null} */
    const run = fromServer(ev.data);
    void finish(run);
  });
  source.onerror = () => {
    if (r.done) return;
    source.close();
    void poll(r.runId);
  };
}

/** @param {string} runId */
async function poll(runId) {
  // Null once the operator dismissed it, or another one is followed.
  const followed = () => (state.restore?.runId === runId ? state.restore : null);
  while (followed()) {
    const run = await api.run(runId).catch(() => null);
    const r = followed();
    if (!r) return;
    if (run && run.status !== 'running') return finish(run);
    if (run && run.timeline.length > 0) r.states = run.timeline;
    showProgress();
    await new Promise((ok) => setTimeout(ok, 1500));
  }
}

/** @param {RunView | null} run the run as recorded, or null when it could not be read */
async function finish(run) {
  const r = state.restore;
  if (!r) return;
  r.done = true;
  r.status = run ? run.status : 'needs-operator';
  r.error = run?.error;
  r.safetySnapshotId = run?.safetySnapshotId;
  if (run && run.timeline.length > 0) r.states = run.timeline;
  if (run) state.openRuns.add(run.runId);
  await refresh();
  showProgress();
}

// ---------------------------------------------------------------------------------------------
// Wiring

function wire() {
  const box = dialog();
  $('restore-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void confirmRestore();
  });
  $('restore-cancel').addEventListener('click', () => {
    box.close();
  });
  confirmInput().addEventListener('input', () => {
    goButton().disabled = state.pending?.database !== confirmInput().value;
    $('restore-error').textContent = '';
  });
  // Escape closes a modal dialog by itself ("cancel"); either way the focus goes back where it was.
  box.addEventListener('close', () => {
    state.pending = null;
    const back = state.returnFocus;
    state.returnFocus = null;
    if (back?.isConnected) back.focus();
    else if (back?.dataset.snapshot) {
      const again = document.querySelector(`button[data-snapshot="${CSS.escape(back.dataset.snapshot)}"]`);
      if (again instanceof HTMLElement) again.focus();
    }
  });
  $('refresh').addEventListener('click', () => void refresh());
  $('progress-dismiss').addEventListener('click', () => {
    $('restore-progress').hidden = true;
    state.restore = null;
    $('main').focus();
  });
  window.addEventListener('hashchange', () => {
    const name = databaseInHash();
    if (name && name !== state.selected && state.databases.some((d) => d.name === name)) selectDatabase(name);
  });
  // Refresh quietly, but never while the operator is typing the confirmation.
  setInterval(() => {
    if (!box.open && document.visibilityState === 'visible') void refresh();
  }, REFRESH_MS);
}

wire();
void refresh();
