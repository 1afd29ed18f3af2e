// @ts-check
// The console page's sections for one database: overview, snapshots, the record of quiesced APIs,
// runs with their timelines, and rehearsals with a chart drawn as inline SVG.
import { $, badge, cardTable, fmtMs, fmtTime, h, svg, version } from './dom.js';
/** @import { Child } from './dom.js' */
/** @import { DatabaseView, QuiesceView, RehearsalView, RunView, SnapshotView } from '../src/console-server/backend.ts' */
/** @import { Json } from '../src/ports.ts' */

/** @typedef {[string, Child]} Fact */

/** @param {DatabaseView} d */
export function renderOverview(d) {
  $('overview-heading').textContent = d.name;
  /** @type {Fact[]} */
  const facts = [
    ['Schema version', h('span', { class: 'big' }, version(d.schemaVersion))],
    [
      'Compatible from',
      h(
        'span',
        {},
        h('span', { class: 'big' }, version(d.compatibleFrom)),
        d.raisedBy
          ? h('span', { class: 'muted' }, ` (raised by ${d.raisedBy})`)
          : h('span', { class: 'muted' }, ' (apps built for this version or later can run on it)'),
      ),
    ],
  ];
  if (d.versionNote) facts.push(['Note', d.versionNote]);
  if (d.lock) facts.push(['Lock', `${d.lock.stale ? 'STALE lock' : 'held'} by run ${d.lock.owner} since ${fmtTime(d.lock.acquiredAt)}`]);
  if (d.lastRun) facts.push(['Last run', h('span', {}, `${d.lastRun.kind} started ${fmtTime(d.lastRun.startedAt)} `, badge(d.lastRun.status))]);
  $('overview-facts').replaceChildren(...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/**
 * @param {DatabaseView} d
 * @param {readonly SnapshotView[]} snapshots
 * @param {{ busy: boolean, onRestore: (d: DatabaseView, s: SnapshotView, button: HTMLElement) => void }} options
 */
export function renderSnapshots(d, snapshots, { busy, onRestore }) {
  const body = $('snapshots-body');
  if (snapshots.length === 0) {
    body.replaceChildren(h('p', { class: 'muted' }, 'No restorable snapshot is recorded for this database.'));
    return;
  }
  body.replaceChildren(
    cardTable(
      ['Snapshot', 'Kind', 'Holds version', 'Taken', 'By run', 'Action'],
      snapshots.map((s) => ({
        cells: [
          h('code', {}, s.snapshotId),
          s.kind === 'pre-upgrade' ? 'pre-upgrade' : 'safety (before a restore)',
          h('span', { class: 'big' }, version(s.schemaVersion)),
          fmtTime(s.createdAt),
          h('code', { class: 'small id', title: s.runId }, s.runId.slice(0, 8)),
          h(
            'button',
            {
              type: 'button',
              class: 'restore',
              'data-snapshot': s.snapshotId,
              disabled: busy,
              'aria-label': `Restore ${d.name} to snapshot ${s.snapshotId} (version ${version(s.schemaVersion)})`,
              onclick: (ev) => {
                if (ev.currentTarget instanceof HTMLElement) onRestore(d, s, ev.currentTarget);
              },
            },
            'Restore…',
          ),
        ],
      })),
    ),
  );
}

/** @param {Json} prior */
function priorText(prior) {
  if (prior === null || typeof prior !== 'object') return JSON.stringify(prior);
  return Object.entries(prior)
    .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(', ');
}

/**
 * What the loud line about still-quiesced APIs says next: an interrupted run names the one command
 * that resumes them; a run that ended left them; a run going on holds them.
 * @param {readonly QuiesceView[]} still
 */
function stillNote(still) {
  const interrupted = still.find((r) => r.runInterrupted);
  if (interrupted?.runInterrupted) return ` ${interrupted.runInterrupted}.`;
  if (still.some((r) => !r.runActive)) {
    return ' Its run has ended: resume it to the prior state shown below, or run "safeshift quiesced" and "safeshift runs" to see why.';
  }
  return ' A run in progress holds it.';
}

/** @param {readonly QuiesceView[]} records */
export function renderQuiesced(records) {
  const body = $('quiesced-body');
  if (records.length === 0) {
    body.replaceChildren(h('p', { class: 'muted' }, 'No API was quiesced for this database.'));
    return;
  }
  const still = records.filter((r) => r.stillQuiesced);
  // Anything still quiesced first, then the newest: what an operator at night needs to see first.
  const ordered = [...[...still].reverse(), ...records.filter((r) => !r.stillQuiesced).reverse()];
  const stillIds = still.map((r) => r.apiId).join(', ');
  body.replaceChildren(
    ...[
      still.length > 0 ? h('p', { class: 'alert-loud' }, `⚠ ${still.length} still quiesced: ${stillIds}.`, stillNote(still)) : null,
      cardTable(
        ['API', 'Status', 'Prior state (what resume puts back)', 'Quiesced at', 'Resumed at', 'Run'],
        ordered.map((r) => ({
          class: r.stillQuiesced ? 'loud' : null,
          cells: [
            h('code', {}, r.apiId),
            h(
              'span',
              {},
              badge(r.status),
              r.stillQuiesced && r.runInterrupted ? h('span', { class: 'small' }, ' run interrupted') : null,
              r.stillQuiesced && r.runActive ? h('span', { class: 'small' }, ' run in progress') : null,
            ),
            h('code', { class: 'small' }, priorText(r.prior)),
            fmtTime(r.quiescedAt),
            r.resumedAt ? fmtTime(r.resumedAt) : h('strong', {}, 'not resumed'),
            h('code', { class: 'small id', title: r.runId }, r.runId.slice(0, 8)),
          ],
        })),
      ),
    ].filter((el) => el !== null),
  );
}

/**
 * @param {readonly RunView[]} runs
 * @param {Set<string>} openRuns the runs whose details are open
 */
export function renderRuns(runs, openRuns) {
  const body = $('runs-body');
  if (runs.length === 0) {
    body.replaceChildren(h('p', { class: 'muted' }, 'No run is recorded for this database.'));
    return;
  }
  body.replaceChildren(...runs.map((r) => renderRun(r, openRuns)));
}

/**
 * @param {RunView} r
 * @param {Set<string>} openRuns
 */
function renderRun(r, openRuns) {
  const details = h('details', { class: 'run', 'data-run': r.runId, open: openRuns.has(r.runId) });
  details.addEventListener('toggle', () => {
    if (details.open) openRuns.add(r.runId);
    else openRuns.delete(r.runId);
  });
  // Where it meant to go, and where it ended when that is not there: "3 → 5: rolled back, at 3".
  const planned = `${version(r.fromVersion)} → ${version(r.plannedVersion)}${r.kind === 'restore' ? ' (snapshot)' : ''}`;
  const versions = r.status === 'succeeded' || r.status === 'running' ? planned : `${planned}: ${r.status.replace('-', ' ')}, at ${version(r.toVersion)}`;
  details.append(
    h(
      'summary',
      {},
      r.interrupted ? badge('needs-operator', 'INTERRUPTED') : badge(r.status),
      h('strong', {}, r.kind),
      h('span', {}, versions),
      h('span', { class: 'muted' }, fmtTime(r.startedAt)),
      h('span', { class: 'muted' }, r.durationMs !== undefined ? fmtMs(r.durationMs) : r.interrupted ? 'not finished' : 'in progress'),
      r.error ? h('span', { class: 'badge status-failed' }, r.error.code) : null,
      r.error?.migration ? h('span', {}, 'in ', h('code', {}, r.error.migration)) : null,
    ),
  );
  /** @type {Fact[]} */
  const facts = [['Run id', h('code', {}, r.runId)]];
  if (r.snapshotId) facts.push([r.kind === 'restore' ? 'Restored snapshot' : 'Pre-upgrade snapshot', h('code', {}, r.snapshotId)]);
  if (r.safetySnapshotId) facts.push(['Safety snapshot (the data before this restore)', h('code', {}, r.safetySnapshotId)]);
  if (r.strategy) facts.push(['Strategy', r.strategy]);
  if (r.applied.length > 0) facts.push(['Applied', r.applied.join(', ')]);
  if (r.quiescedWindowMs !== undefined) facts.push(['Quiesced window', fmtMs(r.quiescedWindowMs)]);
  const longest = Math.max(1, ...r.timeline.map((t) => t.durationMs));
  details.append(
    h(
      'div',
      { class: 'run-body' },
      r.interrupted ? h('p', { class: 'alert-loud' }, `⚠ ${r.interrupted}.`) : null,
      r.error
        ? h(
            'div',
            { class: 'error-box' },
            h('p', {}, h('strong', {}, r.error.code), r.error.state ? ` in state ${r.error.state}` : ''),
            r.error.migration ? h('p', {}, 'Failing migration: ', h('code', {}, r.error.migration)) : null,
            h('p', { class: 'message' }, r.error.message),
          )
        : null,
      h(
        'dl',
        { class: 'facts' },
        facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
      ),
      r.timeline.length === 0
        ? h('p', { class: 'muted' }, 'No timeline recorded.')
        : h(
            'div',
            { class: 'scroll' },
            h(
              'table',
              { class: 'timeline' },
              h('caption', { class: 'muted small' }, `Timeline: ${r.timeline.length} states`),
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  h('th', { scope: 'col' }, 'State'),
                  h('th', { scope: 'col' }, 'Entered'),
                  h('th', { scope: 'col', class: 'num' }, 'Duration'),
                  h('th', { scope: 'col' }, h('span', { class: 'muted' }, 'Share')),
                ),
              ),
              h(
                'tbody',
                {},
                r.timeline.map((t) => {
                  const bar = h('div', { class: t.error ? 'bar err' : 'bar' });
                  bar.style.width = `${Math.max(0.5, (t.durationMs / longest) * 100)}%`;
                  return h(
                    'tr',
                    {},
                    h('td', {}, t.state, t.error ? h('span', { class: 'badge status-failed' }, ` ${t.error}`) : null),
                    h('td', { class: 'small' }, fmtTime(t.enteredAt).slice(11)),
                    h('td', { class: 'num' }, fmtMs(t.durationMs)),
                    h('td', { class: 'bar-cell', 'aria-hidden': 'true' }, bar),
                  );
                }),
              ),
            ),
          ),
    ),
  );
  return details;
}

/** @param {readonly RehearsalView[]} reports */
export function renderRehearsals(reports) {
  const body = $('rehearsals-body');
  if (reports.length === 0) {
    body.replaceChildren(h('p', { class: 'muted' }, 'No rehearsal is recorded for this database.'));
    return;
  }
  body.replaceChildren(
    ...reports.map((r) =>
      h(
        'div',
        { class: 'rehearsal' },
        h(
          'h3',
          {},
          `${version(r.fromVersion)} → ${version(r.toVersion)} · ${fmtTime(r.createdAt)} `,
          badge(r.status === 'failed' ? 'failed' : 'succeeded', r.status),
        ),
        h(
          'p',
          { class: 'window' },
          'Predicted quiesced window: ',
          h('strong', {}, fmtMs(r.predictedWindowMs)),
          h('span', { class: 'muted small' }, ' (snapshot, migrations, verify and orchestration, as measured on a clone)'),
        ),
        r.error ? h('p', { class: 'error-text' }, `${r.error.code}: ${r.error.message}`) : null,
        r.migrations.length > 0 ? chart(r.migrations) : h('p', { class: 'muted' }, 'No migration was pending.'),
        r.migrations.length > 0
          ? h(
              'details',
              {},
              h('summary', {}, 'Durations as a table'),
              h(
                'table',
                {},
                h(
                  'thead',
                  {},
                  h(
                    'tr',
                    {},
                    h('th', { scope: 'col' }, 'Migration'),
                    h('th', { scope: 'col', class: 'num' }, 'Duration'),
                    h('th', { scope: 'col', class: 'num' }, 'Lock retries'),
                  ),
                ),
                h(
                  'tbody',
                  {},
                  r.migrations.map((m) =>
                    h(
                      'tr',
                      {},
                      h('td', {}, h('code', {}, m.script)),
                      h('td', { class: 'num' }, fmtMs(m.executionMs)),
                      h('td', { class: 'num' }, m.lockRetries),
                    ),
                  ),
                ),
              ),
            )
          : null,
      ),
    ),
  );
}

/**
 * A horizontal bar per migration, drawn as inline SVG; the slowest one stands out.
 * @param {RehearsalView['migrations']} migrations
 */
function chart(migrations) {
  const rowH = 26;
  const labelW = 260;
  const barW = 380;
  const width = labelW + barW + 90;
  const height = migrations.length * rowH + 10;
  const max = Math.max(1, ...migrations.map((m) => m.executionMs));
  const total = migrations.reduce((n, m) => n + m.executionMs, 0);
  const root = svg('svg', {
    class: 'chart',
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': `Duration of each migration in the rehearsal: ${migrations.length} migrations, ${fmtMs(total)} in all`,
  });
  migrations.forEach((m, i) => {
    const y = 5 + i * rowH;
    const label = m.script.length > 38 ? `${m.script.slice(0, 36)}…` : m.script;
    const w = Math.max(2, (m.executionMs / max) * barW);
    const g = svg('g', {}, svg('title', {}, `${m.script}: ${fmtMs(m.executionMs)}${m.lockRetries ? `, ${m.lockRetries} lock retries` : ''}`));
    g.append(svg('text', { x: labelW - 8, y: y + rowH / 2 + 4, 'text-anchor': 'end' }, label));
    g.append(
      svg('rect', {
        class: m.executionMs === max && migrations.length > 1 ? 'bar-rect slow' : 'bar-rect',
        x: labelW,
        y: y + 4,
        width: w,
        height: rowH - 10,
        rx: 3,
      }),
    );
    g.append(svg('text', { class: 'value', x: labelW + w + 6, y: y + rowH / 2 + 4 }, fmtMs(m.executionMs)));
    root.append(g);
  });
  return root;
}
