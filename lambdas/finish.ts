import { createStepHandler } from './aws-context.ts';
import { connectorPort } from './ports/connector-port.ts';
import { ledgerPort } from './ports/ledger-port.ts';

/** The `finish` step as a Lambda: the Task's `{ state, args }` in, the step's output out. */
export const handler = createStepHandler('finish', { ledger: ledgerPort, connector: connectorPort });
