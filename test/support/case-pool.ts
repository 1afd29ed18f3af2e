import { availableParallelism } from 'node:os';
import type { ShopTemplate } from './shop.ts';

/**
 * How many cases of one matrix run at once. A case mostly waits: on PostgreSQL copying a database,
 * on a child process starting, on a retry interval. Running a few side by side keeps the server and
 * the cores busy; more than that only makes each case slower. `SAFESHIFT_TEST_CASES=1` runs them one
 * after another (to read a failing case's log in order).
 */
export function caseConcurrency(): number {
  const given = Number.parseInt(process.env.SAFESHIFT_TEST_CASES ?? '', 10);
  if (Number.isInteger(given) && given > 0) return given;
  return Math.min(4, Math.max(2, availableParallelism()));
}

/**
 * Runs `run` for every case, at most `lanes` at once, and waits for all of them, even after one
 * failed, so none is cut off half-way with its databases still in use. Throws the first case's
 * failure (by case order, not by time), naming how many others failed too.
 *
 * Each case is handed its lane, 0 to `lanes - 1`, and no two cases run on the same lane at once: a
 * case works on its lane's own shop, since what a quiesce changes (the app role) is the server's,
 * not a database's, and two cases sharing a role would see each other's quiesce.
 *
 * @example
 * ```ts
 * await eachCase(tasks, (state, lane) => faultCase(shops[lane], state, 'throws'), shops.length);
 * ```
 */
export async function eachCase<T>(cases: readonly T[], run: (item: T, lane: number) => Promise<void>, lanes: number): Promise<void> {
  const failures: { index: number; error: unknown }[] = [];
  const queue = cases.map((item, index) => ({ item, index }));
  const worker = async (lane: number): Promise<void> => {
    for (let c = queue.shift(); c; c = queue.shift()) {
      try {
        await run(c.item, lane);
      } catch (error) {
        failures.push({ index: c.index, error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(lanes, cases.length)) }, (_, lane) => worker(lane)));
  if (failures.length === 0) return;
  failures.sort((a, b) => a.index - b.index);
  const first = failures[0];
  if (failures.length > 1 && first?.error instanceof Error) first.error.message += `\n(and ${failures.length - 1} more case(s) failed)`;
  throw first?.error;
}

/**
 * Makes `count` lanes at once, each with what `make` gives it (typically a shop template of its own
 * and the states a reference run on it ended in), for {@link eachCase}. When one cannot be made, the
 * ones that were are given to `dispose` before the failure is thrown, so nothing is left behind.
 */
export async function makeLanes<L>(make: (lane: number) => Promise<L>, dispose: (lane: L) => Promise<void>, count = caseConcurrency()): Promise<L[]> {
  const made = await Promise.allSettled(Array.from({ length: count }, (_, lane) => make(lane)));
  const lanes = made.flatMap((m) => (m.status === 'fulfilled' ? [m.value] : []));
  const failed = made.find((m) => m.status === 'rejected');
  if (!failed) return lanes;
  for (const lane of lanes) await dispose(lane).catch(() => undefined);
  throw failed.reason;
}

/** The usual lane: a shop of its own, and the states its reference upgrade started and ended in (each shop's timestamps differ). */
export interface ShopLane {
  readonly shop: ShopTemplate;
  /** Production as seeded: what a pre-upgrade snapshot holds, and what a rolled-back run must leave. */
  readonly before: Record<string, unknown>;
  /** Production after the reference upgrade: what a finished one must leave. */
  readonly after: Record<string, unknown>;
  /** The app role's rights before any run, which every quiesce must put back. */
  readonly roleBefore: Record<string, unknown>;
}
