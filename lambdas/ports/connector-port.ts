import { SecretsConnector } from '../../src/adapters/aws/secrets-connector.ts';
import type { Connector } from '../../src/ports.ts';
import type { PortFactory } from '../aws-context.ts';

/**
 * Sessions to the deployment's databases, with credentials fetched from Secrets Manager by the
 * secret's ARN when a step connects (never passed in the state machine's input).
 *
 * @example
 * ```ts
 * export const handler = createStepHandler('migrate', { connector: connectorPort });
 * ```
 */
export const connectorPort: PortFactory<Connector> = (settings) =>
  new SecretsConnector({
    secretArn: settings.secretArn,
    target: settings.databaseKind,
    ...(settings.databaseName ? { databaseName: settings.databaseName } : {}),
  });
