import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take minutes, longest first: the fault and interruption matrices. Each is a few
 * lines that call a shared matrix, so vitest, which on a first run (a fresh clone, CI) has no
 * durations yet and starts the biggest files first, would start them last and leave one running
 * alone at the end.
 */
const SLOW_FIRST = [
  'faults-upgrade-in-place',
  'faults-upgrade-swap',
  'faults-port-calls',
  'workflow-restore',
  'interrupted-rollback',
  'interrupted-upgrade',
  'interrupted-restore',
  'faults-task-failures',
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
