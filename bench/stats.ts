/**
 * The median of a list of timings. With an even count it averages the middle two, so two rounds
 * report their mean rather than favouring either.
 *
 * @example
 * ```ts
 * median([30, 10, 20]) // 20
 * ```
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  // With at least one value, mid is an index of it, and mid - 1 too when the count is even.
  const upper = sorted[mid] ?? Number.NaN;
  return sorted.length % 2 === 1 ? upper : ((sorted[mid - 1] ?? Number.NaN) + upper) / 2;
}
