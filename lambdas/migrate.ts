import { createStepHandler } from './aws-context.ts';
import { connectorPort } from './ports/connector-port.ts';

/** The `migrate` step as a Lambda: the Task's `{ state, args }` in, the step's output out. */
export const handler = createStepHandler('migrate', { connector: connectorPort });
