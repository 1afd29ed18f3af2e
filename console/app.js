// The safeshift console page: loading, the database list, and the Restore flow (confirm, start,
// follow live). Plain JavaScript modules, no build step, nothing fetched from elsewhere.
import { $, api as request, badge, fmtMs, fmtTime, h, STATUS_TEXT, version } from './dom.js';
import { renderOverview, renderQuiesced, renderRehearsals, renderRuns, renderSnapshots } from './views.js';

const TOKEN = document.querySelector('meta[name="safeshift-token"]').content;
const REFRESH_MS = 10_000;

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

const api = (path, init) => request(TOKEN, path, init);
const q = (name) => `?database=${encodeURIComponent(name)}`;

// ---------------------------------------------------------------------------------------------
// Loading and rendering

async function refresh() {
  try {
    const [info, databases] = await Promise.all([state.info || api('/api/info'), api('/api/databases')]);
    state.info = info;
    state.databases = databases;
    $('source').textContent = `Reading ${info.description}`;
    const fromHash = decodeURIComponent((location.hash.match(/^#db=(.+)$/) || [])[1] || '');
    if (!state.selected || !databases.some((d) => d.name === state.selected)) {
      state.selected = databases.some((d) => d.name === fromHash) ? fromHash : (databases[0] && databases[0].name) || null;
    }
    const focused = focusKey();
    renderAlerts();
    renderDatabaseList();
    await renderSelected();
    restoreFocus(focused);
    $('updated').textContent = `Updated ${fmtTime(new Date().toISOString()).slice(11)}`;
  } catch (e) {
    $('updated').textContent = `Could not refresh: ${e.message}`;
  }
}

/**
 * A refresh rebuilds the lists; these two keep a keyboard user's place: which control had the focus
 * (by what it stands for, not by node), and giving it back to its replacement.
 */
function focusKey() {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  if (el.dataset && el.dataset.snapshot) return `button[data-snapshot="${CSS.escape(el.dataset.snapshot)}"]`;
  if (el.dataset && el.dataset.database) return `button[data-database="${CSS.escape(el.dataset.database)}"]`;
  const run = el.tagName === 'SUMMARY' && el.parentElement && el.parentElement.dataset.run;
  return run ? `details[data-run="${CSS.escape(run)}"] > summary` : null;
}

function restoreFocus(selector) {
  if (!selector || (document.activeElement && document.activeElement !== document.body)) return;
  const el = document.querySelector(selector);
  if (el) el.focus();
}

/** The loud banner. Replaced only when it changes: it is an alert region, read out at each change. */
function renderAlerts() {
  const box = $('alerts');
  const loud = state.databases.filter((d) => d.stillQuiesced > 0);
  const total = loud.reduce((n, d) => n + d.stillQuiesced, 0);
  const banner = loud.length === 0 ? null : h('div', { class: 'alert-loud' },
    `⚠ ${total} API${total === 1 ? ' is' : 's are'} STILL QUIESCED: writes to ${loud.length === 1 ? loud[0].name : 'these databases'} are stopped.`,
    h('ul', {}, loud.map((d) => h('li', {}, `${d.name}: ${d.stillQuiesced} still quiesced`,
      d.lock ? ` (run ${d.lock.owner} holds the database${d.lock.stale ? ', its lock is STALE' : ''})` : ' (no run holds the database: it needs an operator)'))));
  if ((banner ? banner.textContent : '') === box.textContent) return;
  box.replaceChildren(...(banner ? [banner] : []));
}

function renderDatabaseList() {
  const list = $('database-list');
  $('databases-empty').hidden = state.databases.length > 0;
  list.replaceChildren(...state.databases.map((d) => h('li', {},
    h('button', {
      type: 'button', class: 'db-button', 'aria-current': d.name === state.selected ? 'true' : 'false', 'data-database': d.name,
      onclick: () => selectDatabase(d.name),
    },
    h('span', { class: 'db-name' }, d.name),
    h('span', { class: 'db-meta' }, `schema ${version(d.schemaVersion)} · compatible from ${version(d.compatibleFrom)}`),
    h('span', { class: 'db-flags' },
      d.lastRun ? badge(d.lastRun.status, `last ${d.lastRun.kind}: ${STATUS_TEXT[d.lastRun.status] || d.lastRun.status}`) : null,
      d.stillQuiesced > 0 ? badge('still', `${d.stillQuiesced} STILL QUIESCED`) : null,
      d.lock ? badge('running', d.lock.stale ? 'STALE LOCK' : 'run in progress') : null),
    ))));
}

function selectDatabase(name) {
  state.selected = name;
  history.replaceState(null, '', `#db=${encodeURIComponent(name)}`);
  renderDatabaseList();
  void renderSelected().then(() => $('main').focus());
}

async function renderSelected() {
  const d = state.databases.find((x) => x.name === state.selected);
  $('pick-database').hidden = !!d;
  for (const id of ['overview', 'snapshots', 'quiesced', 'runs', 'rehearsals']) $(id).hidden = !d;
  if (!d) return;
  const [runs, snapshots, quiesced, rehearsals] = await Promise.all([
    api(`/api/runs${q(d.name)}`), api(`/api/snapshots${q(d.name)}`), api(`/api/quiesced${q(d.name)}`), api(`/api/rehearsals${q(d.name)}`),
  ]);
  if (state.selected !== d.name) return; // the operator picked another one meanwhile
  state.snapshots = snapshots;
  adoptRunningRestore(runs);
  const busy = !!d.lock || !!(state.restore && !state.restore.done && state.restore.database === d.name);
  renderOverview(d);
  renderSnapshots(d, snapshots, { busy, onRestore: openRestore });
  renderQuiesced(quiesced);
  renderRuns(runs, state.openRuns);
  renderRehearsals(rehearsals);
}

// ---------------------------------------------------------------------------------------------
// Restore: confirm, start, follow

function openRestore(d, s, button) {
  state.pending = { database: d.name, snapshot: s };
  state.returnFocus = button;
  $('restore-title').textContent = `Restore ${d.name} to snapshot ${s.snapshotId}?`;
  const quiesces = d.restoreQuiesces || [];
  $('restore-what').replaceChildren(...[
    h('p', {}, 'This will:'),
    h('ul', {},
      h('li', {}, quiesces.length ? `Stop the APIs that write to ${d.name}: ${quiesces.join(', ')}.` : `Stop no API: none was recorded as quiesced for ${d.name}.`),
      h('li', {}, h('strong', {}, `Set the data written since ${fmtTime(s.createdAt)} aside in a safety snapshot`), ` of ${d.name} as it is now, so this restore can itself be undone.`),
      h('li', {}, `Replace ${d.name} (schema version ${version(d.schemaVersion)}) with the data of the snapshot, which holds schema version ${version(s.schemaVersion)}.`),
      h('li', {}, 'Verify it, then resume the APIs exactly as they were.')),
    quiesces.length ? null : h('p', { class: 'warning-note' }, 'Without an API stopped, writes made while the restore runs may end up only in the safety snapshot.'),
  ].filter(Boolean));
  $('restore-name').textContent = d.name;
  $('restore-confirm').value = '';
  $('restore-error').textContent = '';
  $('restore-go').disabled = true;
  $('restore-dialog').showModal();
  $('restore-confirm').focus();
}

async function confirmRestore(ev) {
  ev.preventDefault();
  const p = state.pending;
  const typed = $('restore-confirm').value;
  if (!p || typed !== p.database) {
    $('restore-error').textContent = `Type ${p ? p.database : 'the database name'} exactly.`;
    return;
  }
  $('restore-go').disabled = true;
  try {
    const started = await api('/api/restore', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ database: p.database, snapshotId: p.snapshot.snapshotId, confirm: typed }),
    });
    state.restore = { runId: started.runId, database: p.database, snapshot: p.snapshot, states: [], done: false };
    state.returnFocus = $('progress-heading');
    $('restore-dialog').close();
    showProgress();
    follow(started.runId);
    void refresh();
  } catch (e) {
    $('restore-error').textContent = `${e.code ? `${e.code}: ` : ''}${e.message}`;
    $('restore-go').disabled = $('restore-confirm').value !== p.database;
  }
}

/** After a reload, a restore still running (from this page or elsewhere) is followed again. */
function adoptRunningRestore(runs) {
  if (state.restore && !state.restore.done) return;
  const running = runs.find((r) => r.kind === 'restore' && r.status === 'running');
  if (!running) return;
  state.restore = { runId: running.runId, database: running.database, snapshot: null, toVersion: running.toVersion, states: running.timeline, done: false };
  showProgress();
  follow(running.runId);
}

function showProgress() {
  const r = state.restore;
  const section = $('restore-progress');
  section.hidden = false;
  section.dataset.status = r.done ? (r.status === 'succeeded' ? 'succeeded' : 'failed') : 'running';
  $('progress-heading').textContent = r.snapshot ? `Restore of ${r.database} to ${r.snapshot.snapshotId}` : `Restore of ${r.database} (run ${r.runId.slice(0, 8)})`;
  $('progress-dismiss').hidden = !r.done;
  const states = r.states;
  $('progress-states').replaceChildren(...states.map((s, i) => {
    const next = states[i + 1];
    const ms = next ? Date.parse(next.enteredAt) - Date.parse(s.enteredAt) : undefined;
    return h('li', { class: !next && !r.done ? 'current' : null }, `${s.state}`, h('span', { class: 'muted small' }, ms !== undefined ? ` ${fmtMs(ms)}` : r.done ? '' : ' …'));
  }));
  const summary = $('progress-summary');
  if (!r.done) {
    summary.replaceChildren(badge('running'), ` ${states.length ? `now in ${states[states.length - 1].state}` : 'starting'} (run ${r.runId})`);
  } else if (r.status === 'succeeded') {
    const safety = r.safetySnapshotId || ((state.snapshots || []).find((s) => s.runId === r.runId && s.kind === 'safety') || {}).snapshotId;
    summary.replaceChildren(badge('succeeded', 'restore succeeded'),
      r.snapshot ? ` ${r.database} now holds the data of ${r.snapshot.snapshotId} (schema version ${version(r.snapshot.schemaVersion)}).`
        : ` ${r.database} now holds the data of the snapshot (schema version ${version(r.toVersion)}).`,
      safety ? ` The data it held before is kept in safety snapshot ${safety}.` : ' The data it held before is kept in a safety snapshot.');
  } else {
    summary.replaceChildren(badge(r.status), ` ${r.error ? `${r.error.code}: ${r.error.message}` : 'The restore did not succeed.'} See the run below.`);
  }
}

/** Follows the run live over Server-Sent Events; if the stream breaks, polls the run instead. */
function follow(runId) {
  const source = new EventSource(`/api/runs/${encodeURIComponent(runId)}/events`);
  const r = state.restore;
  source.addEventListener('progress', (ev) => {
    const p = JSON.parse(ev.data);
    r.states = p.states;
    showProgress();
  });
  source.addEventListener('end', (ev) => {
    source.close();
    const run = JSON.parse(ev.data);
    void finish(run);
  });
  source.onerror = () => {
    if (r.done) return;
    source.close();
    void poll(runId);
  };
}

async function poll(runId) {
  for (;;) {
    if (!state.restore || state.restore.runId !== runId) return; // dismissed, or another one followed
    const run = await api(`/api/runs/${encodeURIComponent(runId)}`).catch(() => null);
    if (run && run.status !== 'running') return finish(run);
    if (run && run.timeline.length) state.restore.states = run.timeline;
    showProgress();
    await new Promise((ok) => setTimeout(ok, 1500));
  }
}

async function finish(run) {
  const r = state.restore;
  if (!r) return;
  r.done = true;
  r.status = run ? run.status : 'needs-operator';
  r.error = run && run.error;
  r.safetySnapshotId = run && run.safetySnapshotId;
  if (run && run.timeline.length) r.states = run.timeline;
  if (run) state.openRuns.add(run.runId);
  await refresh();
  showProgress();
}

// ---------------------------------------------------------------------------------------------
// Wiring

function wire() {
  const dialog = $('restore-dialog');
  $('restore-form').addEventListener('submit', confirmRestore);
  $('restore-cancel').addEventListener('click', () => dialog.close());
  $('restore-confirm').addEventListener('input', () => {
    $('restore-go').disabled = !state.pending || $('restore-confirm').value !== state.pending.database;
    $('restore-error').textContent = '';
  });
  // Escape closes a modal dialog by itself ("cancel"); either way the focus goes back where it was.
  dialog.addEventListener('close', () => {
    state.pending = null;
    const back = state.returnFocus;
    state.returnFocus = null;
    if (back && back.isConnected) back.focus();
    else if (back && back.dataset && back.dataset.snapshot) {
      const again = document.querySelector(`button[data-snapshot="${CSS.escape(back.dataset.snapshot)}"]`);
      if (again) again.focus();
    }
  });
  $('refresh').addEventListener('click', () => void refresh());
  $('progress-dismiss').addEventListener('click', () => {
    $('restore-progress').hidden = true;
    state.restore = null;
    $('main').focus();
  });
  window.addEventListener('hashchange', () => {
    const name = decodeURIComponent((location.hash.match(/^#db=(.+)$/) || [])[1] || '');
    if (name && name !== state.selected && state.databases.some((d) => d.name === name)) selectDatabase(name);
  });
  // Refresh quietly, but never while the operator is typing the confirmation.
  setInterval(() => {
    if (!dialog.open && document.visibilityState === 'visible') void refresh();
  }, REFRESH_MS);
}

wire();
void refresh();
