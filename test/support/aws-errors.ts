import { SafeshiftError } from '../../src/core/errors.ts';

/** An error shaped as the AWS SDK throws it: `name` is AWS's error name, with `$fault` and `$metadata`. */
export function awsError(name: string, status = 400): Error {
  return Object.assign(new Error(`${name} (test)`), { name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status } });
}

/** What a promise rejected with; fails the test when it resolved. */
export async function rejection<E = SafeshiftError>(promise: Promise<unknown>): Promise<E> {
  try {
    await promise;
  } catch (error) {
    return error as E;
  }
  throw new Error('expected a rejection');
}

/** The SafeshiftError code a promise rejected with, or a description of what happened instead. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return error instanceof SafeshiftError ? error.code : `not a SafeshiftError: ${(error as Error).name}`;
  }
  return 'no error';
}
