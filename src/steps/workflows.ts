import { AslBuilder, type AslDefinition } from './asl-builder.ts';
import type { CatchPath } from './step-specs.ts';

/**
 * Where the rollback path's Catches keep what failed there, beside `$.error` (what sent the run down
 * it), so the record of a run that needs an operator has both: the cause, and why bringing
 * production back failed.
 */
const ROLLBACK_ERROR = '$.rollbackError' satisfies CatchPath;

/** The ending every failure after quiesce takes: bring production back, resume, clean up, record. */
function rollbackPath(b: AslBuilder, restoreFrom: 'pre-upgrade' | null): AslBuilder {
  b.task('RollbackPlan', 'rollbackPlan', {
    resultPath: '$.rollback',
    next: 'RollbackAction',
    catchTo: 'FinishNeedsOperator',
    catchPath: ROLLBACK_ERROR,
    persistent: true,
  });
  b.choice(
    'RollbackAction',
    [
      { Variable: '$.rollback.action', StringEquals: 'swap-back', Next: 'SwapBack' },
      ...(restoreFrom ? [{ Variable: '$.rollback.action', StringEquals: 'restore', Next: 'StartRestoreSnapshot' }] : []),
    ],
    'ResumeAfterRollback',
  );
  b.task('SwapBack', 'swap', {
    args: { replacement: 'retired', retired: 'failed' },
    resultPath: null,
    next: 'RollbackPlan',
    catchTo: 'FinishNeedsOperator',
    catchPath: ROLLBACK_ERROR,
    persistent: true,
  });
  if (restoreFrom) {
    b.pollLoop(
      'RestoreSnapshot',
      { step: 'startClone', args: { from: restoreFrom, role: 'restored' } },
      { step: 'checkDatabase', args: { role: 'restored' } },
      'SwapRestoredIn',
      'FinishNeedsOperator',
      true,
      ROLLBACK_ERROR,
    );
    b.task('SwapRestoredIn', 'swap', {
      args: { replacement: 'restored', retired: 'failed' },
      resultPath: null,
      next: 'RollbackPlan',
      catchTo: 'FinishNeedsOperator',
      catchPath: ROLLBACK_ERROR,
      persistent: true,
    });
  }
  b.task('ResumeAfterRollback', 'resume', {
    resultPath: '$.resumed',
    next: 'CleanupAfterRollback',
    catchTo: 'FinishNeedsOperator',
    catchPath: ROLLBACK_ERROR,
    persistent: true,
  });
  b.task('CleanupAfterRollback', 'cleanup', {
    resultPath: null,
    next: 'FinishRolledBack',
    catchTo: 'FinishNeedsOperator',
    catchPath: ROLLBACK_ERROR,
    persistent: true,
  });
  b.task('FinishRolledBack', 'finish', { args: { status: 'rolled-back' }, resultPath: null, next: 'RolledBack', persistent: true });
  b.fail(
    'RolledBack',
    'ROLLED_BACK',
    'The run failed; production was brought back to its state before the run and every API was resumed. The ledger has the error.',
  );
  b.task('FinishNeedsOperator', 'finish', { args: { status: 'needs-operator' }, resultPath: null, next: 'NeedsOperator', persistent: true });
  b.fail('NeedsOperator', 'NEEDS_OPERATOR', 'The run failed and could not bring production back by itself; the ledger says what state things are in.');
  return b;
}

/** The run's opening and the refusal ending shared by all three workflows. */
function refusalPath(b: AslBuilder, afterRehearsal: boolean): AslBuilder {
  // Only a refused rehearsal has something of its own to delete; a refused preflight made nothing.
  if (afterRehearsal) b.task('CleanupAfterRefusal', 'cleanup', { resultPath: null, next: 'FinishRefused', persistent: true });
  b.task('FinishRefused', 'finish', { args: { status: 'refused' }, resultPath: null, next: 'Refused', persistent: true });
  b.fail('Refused', 'REFUSED', 'The run was refused before production changed; the ledger has the reason.');
  return b;
}

/** A rehearsal on a clone of production: snapshot, clone, migrate, verify, record, delete. */
function rehearsal(b: AslBuilder, next: string, onFailure: string): AslBuilder {
  b.pollLoop(
    'RehearsalSnapshot',
    { step: 'startSnapshot', args: { role: 'rehearsal-snapshot' } },
    { step: 'checkSnapshot', args: { role: 'rehearsal-snapshot' } },
    'StartRehearsalCloneFromSnapshot',
    onFailure,
  );
  b.pollLoop(
    'RehearsalCloneFromSnapshot',
    { step: 'startClone', args: { from: 'rehearsal-snapshot', role: 'rehearsal-clone' } },
    { step: 'checkDatabase', args: { role: 'rehearsal-clone' } },
    'MigrateRehearsalClone',
    onFailure,
  );
  b.migrateLoop('MigrateRehearsalClone', 'rehearsal-clone', '$.rehearsed', 'VerifyRehearsalClone', onFailure);
  b.task('VerifyRehearsalClone', 'verify', { args: { target: 'rehearsal-clone' }, resultPath: null, next: 'RecordRehearsal', catchTo: onFailure });
  b.task('RecordRehearsal', 'recordRehearsal', { resultPath: null, next: 'CleanupRehearsal', catchTo: onFailure, persistent: true });
  b.task('CleanupRehearsal', 'cleanup', { resultPath: null, next, catchTo: onFailure, persistent: true });
  b.task('RecordRehearsalFailure', 'recordRehearsalFailure', { resultPath: null, next: 'CleanupAfterRefusal', persistent: true });
  return b;
}

/**
 * The upgrade: preflight, rehearsal on a clone, quiesce, pre-upgrade snapshot, promote (in place or
 * by swapping in a migrated clone), verify, resume, clean up; any failure after quiesce brings
 * production back to the pre-upgrade snapshot.
 */
export function upgradeWorkflow(): AslDefinition {
  const b = new AslBuilder();
  const rollback = 'RollbackPlan';
  b.task('Preflight', 'preflight', { resultPath: '$', next: 'AnythingToDo', catchTo: 'FinishRefused' });
  b.choice('AnythingToDo', [{ Variable: '$.preflight.nothingToDo', BooleanEquals: true, Next: 'FinishSucceeded' }], 'RehearseFirst');
  b.choice('RehearseFirst', [{ Variable: '$.run.rehearsal', BooleanEquals: false, Next: 'Quiesce' }], 'StartRehearsalSnapshot');
  rehearsal(b, 'Quiesce', 'RecordRehearsalFailure');
  b.task('Quiesce', 'quiesce', { resultPath: '$.quiesced', next: 'StartPreUpgradeSnapshot', catchTo: rollback });
  b.pollLoop(
    'PreUpgradeSnapshot',
    { step: 'startSnapshot', args: { role: 'pre-upgrade', clone: { from: 'pre-upgrade', role: 'new', strategy: 'swap' } } },
    { step: 'checkSnapshot', args: { role: 'pre-upgrade' } },
    'RecordSnapshotTaken',
    rollback,
  );
  b.pass('RecordSnapshotTaken', '$.snapshot', { 'startedAt.$': '$.poll.startedAt' }, 'ConfirmQuiesced');
  b.task('ConfirmQuiesced', 'confirmQuiesced', { resultPath: null, next: 'Strategy', catchTo: rollback });
  b.choice('Strategy', [{ Variable: '$.run.strategy', StringEquals: 'swap', Next: 'StartNewClone' }], 'MigrateProduction');
  b.migrateLoop('MigrateProduction', 'production', '$.promoted', 'VerifyProduction', rollback);
  b.pollLoop(
    'NewClone',
    { step: 'startClone', args: { from: 'pre-upgrade', role: 'new' } },
    { step: 'checkDatabase', args: { role: 'new' } },
    'MigrateNewClone',
    rollback,
  );
  b.migrateLoop('MigrateNewClone', 'new', '$.promoted', 'VerifyNewClone', rollback);
  b.task('VerifyNewClone', 'verify', { args: { target: 'new' }, resultPath: null, next: 'ConfirmQuiescedBeforeSwap', catchTo: rollback });
  b.task('ConfirmQuiescedBeforeSwap', 'confirmQuiesced', { resultPath: null, next: 'SwapNewIn', catchTo: rollback });
  b.task('SwapNewIn', 'swap', { args: { replacement: 'new', retired: 'retired' }, resultPath: null, next: 'VerifyProduction', catchTo: rollback });
  b.task('VerifyProduction', 'verify', { args: { target: 'production' }, resultPath: null, next: 'Resume', catchTo: rollback });
  b.task('Resume', 'resume', { resultPath: '$.resumed', next: 'Cleanup', catchTo: rollback, persistent: true });
  b.task('Cleanup', 'cleanup', { resultPath: null, next: 'FinishSucceeded', persistent: true });
  b.task('FinishSucceeded', 'finish', { args: { status: 'succeeded' }, resultPath: null, next: 'Succeeded', persistent: true });
  b.succeed('Succeeded');
  rollbackPath(b, 'pre-upgrade');
  refusalPath(b, true);
  return b.build(
    'safeshift upgrade: preflight, rehearse on a clone, quiesce, snapshot, promote, verify, resume; restore the pre-upgrade snapshot on failure',
    'Preflight',
  );
}

/**
 * The restore: quiesce, take a safety snapshot of the current state (so the restore can itself be
 * undone), bring in a database made from the chosen snapshot, verify, resume.
 */
export function restoreWorkflow(): AslDefinition {
  const b = new AslBuilder();
  const rollback = 'RollbackPlan';
  b.task('Preflight', 'restorePreflight', { resultPath: '$', next: 'Quiesce', catchTo: 'FinishRefused' });
  b.task('Quiesce', 'quiesce', { resultPath: '$.quiesced', next: 'StartSafetySnapshot', catchTo: rollback });
  b.pollLoop(
    'SafetySnapshot',
    { step: 'startSnapshot', args: { role: 'safety', clone: { from: 'requested', role: 'restored' } } },
    { step: 'checkSnapshot', args: { role: 'safety' } },
    'RecordSnapshotTaken',
    rollback,
  );
  b.pass('RecordSnapshotTaken', '$.snapshot', { 'startedAt.$': '$.poll.startedAt' }, 'StartRestoredFromSnapshot');
  b.pollLoop(
    'RestoredFromSnapshot',
    { step: 'startClone', args: { from: 'requested', role: 'restored' } },
    { step: 'checkDatabase', args: { role: 'restored' } },
    'ConfirmQuiesced',
    rollback,
  );
  b.task('ConfirmQuiesced', 'confirmQuiesced', { resultPath: null, next: 'SwapRestoredInForward', catchTo: rollback });
  b.task('SwapRestoredInForward', 'swap', {
    args: { replacement: 'restored', retired: 'retired' },
    resultPath: null,
    next: 'VerifyProduction',
    catchTo: rollback,
  });
  b.task('VerifyProduction', 'verify', { args: { target: 'production' }, resultPath: null, next: 'Resume', catchTo: rollback });
  b.task('Resume', 'resume', { resultPath: '$.resumed', next: 'Cleanup', catchTo: rollback, persistent: true });
  b.task('Cleanup', 'cleanup', { resultPath: null, next: 'FinishSucceeded', persistent: true });
  b.task('FinishSucceeded', 'finish', { args: { status: 'succeeded' }, resultPath: null, next: 'Succeeded', persistent: true });
  b.succeed('Succeeded');
  rollbackPath(b, null);
  refusalPath(b, false);
  return b.build('safeshift restore: quiesce, safety snapshot, bring back the chosen snapshot, verify, resume; swap back on failure', 'Preflight');
}

/** The scheduled rehearsal: all pending migrations on a clone, timed and verified; production is untouched. */
export function rehearsalWorkflow(): AslDefinition {
  const b = new AslBuilder();
  b.task('Preflight', 'preflight', { resultPath: '$', next: 'AnythingToDo', catchTo: 'FinishRefused' });
  b.choice('AnythingToDo', [{ Variable: '$.preflight.nothingToDo', BooleanEquals: true, Next: 'FinishSucceeded' }], 'StartRehearsalSnapshot');
  rehearsal(b, 'FinishSucceeded', 'RecordRehearsalFailure');
  b.task('FinishSucceeded', 'finish', { args: { status: 'succeeded' }, resultPath: null, next: 'Succeeded', persistent: true });
  b.succeed('Succeeded');
  refusalPath(b, true);
  return b.build('safeshift rehearsal: clone production, apply pending migrations, verify, record durations; the clone is always deleted', 'Preflight');
}

/** The three workflows by file name under state-machines/. */
export const WORKFLOWS = {
  'upgrade.asl.json': upgradeWorkflow,
  'restore.asl.json': restoreWorkflow,
  'rehearsal.asl.json': rehearsalWorkflow,
} as const;
