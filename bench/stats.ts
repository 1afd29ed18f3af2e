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
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
