import { createStepHandler } from './aws-context.ts';
import { connectorPort } from './ports/connector-port.ts';
import { fleetPort } from './ports/fleet-port.ts';
import { ledgerPort } from './ports/ledger-port.ts';
import { quiescersPort } from './ports/quiescers-port.ts';

/** The `restorePreflight` step as a Lambda: the Task's `{ state, args }` in, the step's output out. */
export const handler = createStepHandler('restorePreflight', { ledger: ledgerPort, fleet: fleetPort, connector: connectorPort, quiescers: quiescersPort });
