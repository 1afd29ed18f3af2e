/**
 * The value, narrowed to not null and not undefined; throws a clear Error naming `what` when it is
 * missing. For tests: where a finding, a call, a row or an element must be there for the rest of
 * the test to mean anything, `defined(x, 'the run')` fails with a message rather than with a
 * TypeError further on (and without a non-null assertion).
 */
export function defined<T>(value: T, what: string): NonNullable<T> {
  if (value === null || value === undefined) throw new Error(`expected ${what} to be defined, got ${String(value)}`);
  return value;
}

/**
 * What `fn` threw; throws a clear Error naming `what` when it returned instead. For asserting on
 * the thrown value with a typed matcher: `expect(thrown(() => parse(''), 'parse')).toMatchObject({ code: 'BAD_OPTION' })`
 * says what `toThrow(expect.objectContaining({ code: 'BAD_OPTION' }))` says, without an `any` argument.
 */
export function thrown(fn: () => unknown, what: string): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error(`expected ${what} to throw, it returned`);
}
