import { createStepHandler } from './aws-context.ts';
import { ledgerPort } from './ports/ledger-port.ts';

/** The `recordRehearsal` step as a Lambda: the Task's `{ state, args }` in, the step's output out. */
export const handler = createStepHandler('recordRehearsal', { ledger: ledgerPort });
