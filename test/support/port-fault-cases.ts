import type { RunStatus } from '../../src/ports.ts';
import { upgradeWorkflow } from '../../src/steps/workflows.ts';
import { defined } from './defined.ts';
import { MUTATING_CALLS, type PortCall } from './port-faults.ts';

/*
 * Which port calls test/faults-port-calls.test.ts faults, and the one status each must give: the
 * rules, kept apart from the cases that use them.
 */

const definition = upgradeWorkflow();

/**
 * The one status a port fault must give, from the machine's definition, never from what a run did:
 * - a Task that retries every error (`persistent`: Retry on States.ALL) absorbs one failed call, so
 *   the run ends as it would have without the fault (`unfaulted`: succeeded, or rolled-back for a run
 *   already on its rollback path);
 * - a Task that fails for good (no such Retry, or a port that keeps failing through every attempt)
 *   ends where its Catch leads: RollbackPlan brings production back (rolled-back); FinishRefused, and
 *   RecordRehearsalFailure whose path ends in FinishRefused, refuse the run (every Task before Quiesce
 *   catches there: nothing of production was changed yet); FinishNeedsOperator says an operator must
 *   look (a failure on the rollback path after its retries).
 */
export function expectedStatus(state: string, unfaulted: RunStatus, keepsFailing = false): RunStatus {
  const task = defined(definition.States[state], `state ${state}`);
  const retries = (task.Retry ?? []) as { ErrorEquals: string[] }[];
  if (!keepsFailing && retries.some((r) => r.ErrorEquals.includes('States.ALL'))) return unfaulted;
  const catches = (task.Catch ?? []) as { ErrorEquals: string[]; Next: string }[];
  const next = defined(
    catches.find((c) => c.ErrorEquals.includes('States.ALL')),
    `a Catch of ${state}`,
  ).Next;
  return defined(ENDINGS[next], `the ending of ${state}'s Catch (${next})`);
}

/** Where a Catch leads, as the status the run then ends with (workflows.ts). */
const ENDINGS: Record<string, RunStatus> = {
  RollbackPlan: 'rolled-back',
  FinishRefused: 'refused',
  RecordRehearsalFailure: 'refused',
  FinishNeedsOperator: 'needs-operator',
};

/** The key a call is sampled by: its method in its Task state. */
export const pairOf = (c: PortCall) => `${c.method} @ ${c.state}`;

/** Of each mutating (method, state) among `calls`, the first and the last call; none whose pair is in `covered`. */
export function sampled(calls: readonly PortCall[], covered: ReadonlySet<string> = new Set()): PortCall[] {
  const groups = new Map<string, PortCall[]>();
  for (const c of calls) {
    const key = pairOf(c);
    if (!MUTATING_CALLS.includes(c.method) || covered.has(key)) continue;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  return [...groups.values()].flatMap((g) => {
    const first = defined(g[0], 'a call');
    const last = defined(g.at(-1), 'a call');
    return first === last ? [first] : [first, last];
  });
}
