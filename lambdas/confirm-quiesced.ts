import { createStepHandler } from './aws-context.ts';
import { ledgerPort } from './ports/ledger-port.ts';
import { quiescersPort } from './ports/quiescers-port.ts';

/** The `confirmQuiesced` step as a Lambda: the Task's `{ state, args }` in, the step's output out. */
export const handler = createStepHandler('confirmQuiesced', { ledger: ledgerPort, quiescers: quiescersPort });
