import { createStepHandler } from './aws-context.ts';
import { connectorPort } from './ports/connector-port.ts';
import { fleetPort } from './ports/fleet-port.ts';
import { ledgerPort } from './ports/ledger-port.ts';

/** The `startSnapshot` step as a Lambda: the Task's `{ state, args }` in, the step's output out. */
export const handler = createStepHandler('startSnapshot', { ledger: ledgerPort, fleet: fleetPort, connector: connectorPort });
