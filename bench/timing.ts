/**
 * Runs `fn` once and returns how long it took in ms (wall clock, `performance.now()`), the CPU this
 * process spent meanwhile (user + system, ms: the client's own share, apart from the server's), and
 * its result.
 *
 * @example
 * ```ts
 * const { ms, value } = await timed(() => validate({ client, dir }));
 * ```
 */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; cpuMs: number; value: T }> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const value = await fn();
  const took = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { ms: took, cpuMs: (used.user + used.system) / 1000, value };
}
