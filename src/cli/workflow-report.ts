import type { WorkflowReport } from '../adapters/local/local-workflows.ts';
import type { RunStatus } from '../ports.ts';
import { table } from './format.ts';
import { runVersions } from './run-versions.ts';
import { ExitCode } from './exit-codes.ts';

/** The exit code of DESIGN.md for a run's final status. */
export function exitCodeFor(status: RunStatus): number {
  switch (status) {
    case 'succeeded':
      return ExitCode.ok;
    case 'rolled-back':
      return ExitCode.rolledBack;
    case 'refused':
      return ExitCode.refused;
    default:
      return ExitCode.needsOperator;
  }
}

const HEADLINE: Record<RunStatus, string> = {
  succeeded: 'SUCCEEDED',
  'rolled-back': 'FAILED and ROLLED BACK: production is as it was before the run; every API was resumed',
  refused: 'REFUSED before production changed',
  'needs-operator': 'FAILED and NEEDS AN OPERATOR',
  running: 'still RUNNING',
};

function ms(from?: string, to?: string): string {
  if (!from || !to) return '';
  return String(Date.parse(to) - Date.parse(from));
}

/** The text a person reads after an upgrade, restore or rehearsal. */
export function describeRun(report: WorkflowReport): string {
  const { run } = report;
  const lines = [
    `${run.kind} ${run.runId} of ${run.database}: ${HEADLINE[run.status]}`,
    `version ${runVersions(run)}${run.targetVersion ? ` (target ${run.targetVersion})` : ''}` +
      `${run.snapshotId ? `, snapshot ${run.snapshotId}` : ''}${run.safetySnapshotId ? `, safety snapshot ${run.safetySnapshotId}` : ''}`,
  ];
  if (run.error) lines.push(`error [${run.error.code}]${run.error.migration ? ` in ${run.error.migration}` : ''}: ${run.error.message}`);
  for (const later of run.errors?.slice(1) ?? []) lines.push(`then, bringing production back failed [${later.code}]: ${later.message}`);
  if (run.applied?.length) lines.push(`applied: ${run.applied.join(', ')}`);
  if (run.standing) {
    const s = run.standing;
    lines.push(
      '',
      'where things stand:',
      `  production ${run.database}: version ${s.productionNote ? `unknown (${s.productionNote})` : (s.productionVersion ?? 'none')}`,
      `  still quiesced: ${s.stillQuiesced.length ? s.stillQuiesced.join(', ') : 'nothing'}`,
      `  lock: ${s.lock}`,
      `  next: ${s.next}`,
    );
  }
  lines.push(
    '',
    'timeline:',
    table(
      ['state', 'ms', 'error'],
      report.timeline.map((t) => [t.state, ms(t.enteredAt, t.exitedAt), t.error ?? '']),
    ),
  );
  lines.push(`${report.transitions} state transitions`);
  if (report.quiesced.length) {
    lines.push(
      '',
      `quiesced window: ${report.quiescedWindowMs ?? '?'} ms`,
      'record of quiesced APIs:',
      table(
        ['api', 'prior state', 'quiesced at', 'resumed at', 'status'],
        report.quiesced.map((q) => [q.apiId, JSON.stringify(q.prior), q.quiescedAt, q.resumedAt, q.status]),
      ),
    );
    const active = report.quiesced.filter((q) => q.status !== 'resumed');
    if (active.length) lines.push(`STILL QUIESCED: ${active.map((q) => q.apiId).join(', ')} (resume by hand, or see \`safeshift quiesced\`)`);
  }
  return lines.join('\n');
}
