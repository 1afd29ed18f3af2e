import type { StepInvoker } from '../../src/adapters/local/local-runner.ts';
import { runStep } from '../../src/steps/registry.ts';
import { InjectedFault } from './fault-matrix.ts';

/**
 * Runs the steps as they are, except that `act` is done once as the state `actAt` begins (something
 * outside the run happens: a role gets its LOGIN back, someone writes), and, when given, `failAt`
 * fails once before its step runs.
 *
 * @example
 * ```ts
 * await runWorkflow(ports, input, { invoke: interfere('VerifyProduction', () => giveLoginBack(role), 'VerifyProduction') });
 * ```
 */
export function interfere(actAt: string, act: () => Promise<unknown>, failAt?: string): StepInvoker {
  const done = new Set<string>();
  return async (step, input, state, ctx) => {
    if (state === actAt && !done.has('act')) {
      done.add('act');
      await act();
    }
    if (state === failAt && !done.has('fail')) {
      done.add('fail');
      throw new InjectedFault(state, 'throws');
    }
    return runStep(step, input, ctx);
  };
}
