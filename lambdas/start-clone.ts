import { createStepHandler } from './aws-context.ts';
import { fleetPort } from './ports/fleet-port.ts';

/** The `startClone` step as a Lambda: the Task's `{ state, args }` in, the step's output out. */
export const handler = createStepHandler('startClone', { fleet: fleetPort });
