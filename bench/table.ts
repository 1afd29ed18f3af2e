/**
 * Formats rows as a plain-text table with aligned columns (numbers right-aligned), so the output
 * reads the same in a terminal and in a CI log.
 *
 * @example
 * ```ts
 * formatTable(['contender', 'ms'], [['limit', '812']]).join('\n')
 * ```
 */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => /^[-+]?[\d.,]+(x|%)?$/.test(r[i] ?? '')));
  const line = (cells: readonly string[]) =>
    cells
      // A cell beyond the header's columns has no width: it is not padded.
      .map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

/** A duration in ms with one decimal below 100 ms and none above, so small and large figures both stay readable. */
export function ms(value: number): string {
  return value < 100 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US');
}
