import { SafeshiftError } from '../../core/errors.ts';
import type { Quiescer, QuiescerFactory } from '../../ports.ts';
import { DbRoleQuiescer } from './db-role-quiescer.ts';
import { HttpQuiescer, type HttpQuiescerOptions } from './http-quiescer.ts';

const ACCEPTED = '"db-role:ROLE" (lock the role the app logs in as out of the database) or "http:URL" (the API\'s maintenance endpoint)';

/**
 * Makes the quiescers the local runtime supports from their specs: `db-role:ROLE` and `http:URL`.
 * A quiescer's id is the spec itself, so the ledger's record of it is enough to make it again for resume.
 *
 * @example
 * ```ts
 * const factory = new LocalQuiescerFactory(serverUrl);
 * factory.create('db-role:shop_app', 'shop');
 * factory.create('http:http://127.0.0.1:8080/maintenance', 'shop');
 * factory.create('lambda:orders', 'shop'); // throws BAD_OPTION
 * ```
 */
export class LocalQuiescerFactory implements QuiescerFactory {
  constructor(
    private readonly serverUrl: string,
    private readonly httpOptions: HttpQuiescerOptions = {},
  ) {}

  create(spec: string, databaseId: string): Quiescer {
    const colon = spec.indexOf(':');
    const kind = colon < 0 ? spec : spec.slice(0, colon);
    const target = colon < 0 ? '' : spec.slice(colon + 1);
    if (kind === 'db-role' && target) return new DbRoleQuiescer(this.serverUrl, databaseId, target);
    if (kind === 'http' && target) return new HttpQuiescer(target, this.httpOptions);
    if (kind === 'lambda') {
      throw new SafeshiftError('BAD_OPTION', `quiescer "${spec}": Lambda functions are quiesced only by the AWS runtime; locally use ${ACCEPTED}`);
    }
    throw new SafeshiftError('BAD_OPTION', `quiescer "${spec}" is not understood; expected ${ACCEPTED}`);
  }
}
