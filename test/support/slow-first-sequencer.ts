import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest, longest first: the fault and interruption matrices, and the files
 * that mostly wait (a migration sleeping past a timeout, the ASL's real back-off). Most are a few
 * lines that call a shared matrix, so vitest, which on a first run (a fresh clone, CI) has no
 * durations yet and starts the biggest files first, would start them last and leave one running
 * alone at the end.
 */
const SLOW_FIRST = [
  'faults-task-failures',
  'faults-upgrade-in-place',
  'workflow-refusals',
  'faults-upgrade-swap',
  'faults-port-calls',
  'interrupted-restore',
  'interrupted-rollback',
  'interrupted-upgrade',
  'workflow-restore',
  'workflow-quiesce-lost',
];

function rank(file: TestSpecification): number {
  const at = SLOW_FIRST.findIndex((name) => file.moduleId.endsWith(`/${name}.test.ts`));
  return at === -1 ? SLOW_FIRST.length : at;
}

/** Vitest's own order (slowest last time, else biggest), with the known long matrices put first. */
export default class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    // Array.prototype.sort is stable: within a rank, vitest's order stays.
    return [...sorted].sort((a, b) => rank(a) - rank(b));
  }
}
