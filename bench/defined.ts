/**
 * The value, or an Error saying what is missing. For what a benchmark's own bookkeeping guarantees
 * (a map filled for every key it is read with, a list with at least one round), so that a slip fails
 * the benchmark with a message instead of a TypeError or a NaN in the table.
 *
 * @example
 * ```ts
 * const dir = defined(dirs.get(layout), `the ${layout} migrations`);
 * ```
 */
export function defined<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`the benchmark has no ${what}`);
  return value;
}
