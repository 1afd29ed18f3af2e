import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { remainingDatabases, TrackedCopies } from './run-resources.ts';
import { productionState, shopTemplate, type ShopTemplate } from './shop.ts';

/** A test file's seeded shop, the state its copies start in, and the copies its cases made. */
export interface ShopCases {
  /** The template every case copies (set once the file's `beforeAll` ran). */
  readonly shop: ShopTemplate;
  /** {@link productionState} of an untouched copy: what "exactly as before" means. */
  readonly before: Record<string, unknown>;
  readonly copies: TrackedCopies;
}

/**
 * Registers a test file's hooks for cases on copies of one seeded shop: the shop is seeded before
 * all, each case's copies (and what its runs made of them) are dropped after it, and after all no
 * copy, snapshot or clone may be left.
 *
 * @example
 * ```ts
 * const cases = useShopCases(60, 'wfref');
 * it('…', async () => { const db = await cases.copies.copy(cases.shop, 'c1'); … });
 * ```
 */
export function useShopCases(orders: number, refPrefix: string): ShopCases {
  const copies = new TrackedCopies();
  let shop: ShopTemplate | undefined;
  let before: Record<string, unknown> | undefined;
  beforeAll(async () => {
    shop = await shopTemplate(orders);
    const ref = copies.remember(await shop.copy(refPrefix));
    before = await ref.withClient(productionState);
    await ref.drop();
  });
  afterEach(() => copies.cleanUp());
  afterAll(async () => {
    expect(await remainingDatabases(copies.made), 'no copy, snapshot or clone left').toEqual([]);
    await shop?.dispose();
  });
  return {
    get shop() {
      if (!shop) throw new Error('the shop is seeded in beforeAll: use it inside a test');
      return shop;
    },
    get before() {
      if (!before) throw new Error('the shop is seeded in beforeAll: use it inside a test');
      return before;
    },
    copies,
  };
}
