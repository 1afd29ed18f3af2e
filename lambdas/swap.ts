import { createStepHandler } from './aws-context.ts';
import { fleetPort } from './ports/fleet-port.ts';
import { ledgerPort } from './ports/ledger-port.ts';

/** The `swap` step as a Lambda: the Task's `{ state, args }` in, the step's output out. */
export const handler = createStepHandler('swap', { ledger: ledgerPort, fleet: fleetPort });
