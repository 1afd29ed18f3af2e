/**
 * The example shop API in a process of its own, for test/support/busy-shop.ts: the API a test loads
 * and quiesces then answers on its own event loop, as a deployed app does, whatever the test's
 * process is busy with. Driven over IPC (test/support/ipc-child.ts).
 *
 * argv[2]: the app role's database URL.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startShopApi, type ShopApi } from '../../examples/api/server.ts';
import { serveParent } from './ipc-child.ts';

const databaseUrl = process.argv[2];
if (!databaseUrl) throw new Error('usage: shop-api-child.ts DATABASE_URL');

let api: ShopApi = await startShopApi({ databaseUrl });
const port = Number(new URL(api.url).port);
/** What the APIs stopped by a restart had counted, so the counts are the shop's since it started. */
const before = { acknowledged: 0, refused: 0 };
const stats = () => {
  const now = api.stats();
  return { acknowledged: before.acknowledged + now.acknowledged, refused: before.refused + now.refused };
};

serveParent(
  { url: api.url, maintenanceUrl: api.maintenanceUrl },
  {
    stats: () => Promise.resolve(stats()),
    /** Answers once `acknowledged` writes have been acknowledged in all (checked every 10 ms), or fails after `timeoutMs`. */
    acknowledged: async (args) => {
      const atLeast = Number(args.atLeast);
      const timeoutMs = Number(args.timeoutMs);
      const deadline = Date.now() + timeoutMs;
      while (stats().acknowledged < atLeast) {
        if (Date.now() > deadline) throw new Error(`only ${stats().acknowledged} writes acknowledged after ${timeoutMs} ms, waiting for ${atLeast}`);
        await sleep(10);
      }
      return stats();
    },
    /** Stops the API and starts it again on the same port, in normal mode (no state file): an app restarted by a deploy. */
    restart: async () => {
      await api.close();
      const last = api.stats();
      before.acknowledged += last.acknowledged;
      before.refused += last.refused;
      api = await startShopApi({ databaseUrl, port });
      return null;
    },
    /** Stops the API (the writes in flight finish first); the process exits when the parent then lets go of it. */
    close: async () => {
      await api.close();
      return stats();
    },
  },
  () => api.close(),
);
