import { AuroraClusterFleet } from '../../src/adapters/aws/aurora-cluster-fleet.ts';
import { RdsInstanceFleet } from '../../src/adapters/aws/rds-instance-fleet.ts';
import type { Fleet } from '../../src/ports.ts';
import type { PortFactory } from '../aws-context.ts';

/**
 * The fleet of the deployment's database: an RDS DB instance or an Aurora DB cluster. One file per
 * port, so a handler's bundle holds only the AWS clients its step calls.
 *
 * @example
 * ```ts
 * export const handler = createStepHandler('swap', { fleet: fleetPort });
 * ```
 */
export const fleetPort: PortFactory<Fleet> = (settings, log) =>
  settings.databaseKind === 'cluster' ? new AuroraClusterFleet({ log: (line) => log.info(line) }) : new RdsInstanceFleet({ log: (line) => log.info(line) });
