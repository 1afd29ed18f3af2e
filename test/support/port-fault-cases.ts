import type { RunStatus } from '../../src/ports.ts';
import { upgradeWorkflow } from '../../src/steps/workflows.ts';
import { defined } from './defined.ts';
import { failureOutcome } from './fault-matrix.ts';
import { MUTATING_CALLS, type PortCall } from './port-faults.ts';

/*
 * Which port calls test/faults-port-calls.test.ts faults, and the one status each must give: the
 * rules, kept apart from the cases that use them.
 */

const definition = upgradeWorkflow();

/** The one status a port fault in `state` must give (fault-matrix.ts {@link failureOutcome}, on the upgrade's definition). */
export function expectedStatus(state: string, unfaulted: RunStatus, keepsFailing = false): RunStatus {
  return failureOutcome(definition, state, unfaulted, keepsFailing);
}

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
