import { createStepHandler } from './aws-context.ts';
import { connectorPort } from './ports/connector-port.ts';
import { ledgerPort } from './ports/ledger-port.ts';
import { quiescersPort } from './ports/quiescers-port.ts';

/** The `preflight` step as a Lambda: the Task's `{ state, args }` in, the step's output out. */
export const handler = createStepHandler('preflight', { ledger: ledgerPort, connector: connectorPort, quiescers: quiescersPort });
