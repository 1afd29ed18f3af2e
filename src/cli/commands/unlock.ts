import type { Command } from '../command.ts';
import { openTarget, WORKFLOW_OPTIONS } from '../local-target.ts';

/** `safeshift unlock`: break a database's run lock on purpose (a crashed run's). */
export const unlockCommand: Command = {
  name: 'unlock',
  summary: 'show, or with --break remove, the run lock of a database (left by a crashed run)',
  description:
    'A run holds the lock of its database from preflight to its end. A lock left by a crashed run is never taken over silently: ' +
    'this shows its owner and age, and --break removes it. Check `safeshift runs` and `safeshift quiesced` first.',
  examples: ['safeshift unlock', 'safeshift unlock --break'],
  options: { ...WORKFLOW_OPTIONS, break: { type: 'boolean', description: 'remove the lock' } },
  usesDatabase: true,
  async run(input) {
    const { ports, database } = await openTarget(input, { needsDir: false });
    try {
      const { ledger } = ports.ctx;
      const lock = input.values.break ? await ledger.breakLock(database) : await ledger.getLock(database);
      if (!lock) return { exitCode: 0, json: { database, lock: null }, text: `${database} is not locked` };
      const ageS = Math.round((Date.now() - Date.parse(lock.acquiredAt)) / 1000);
      const stale = Date.parse(lock.expiresAt) < Date.now() ? ' (stale: past its expiry)' : '';
      const text = `${input.values.break ? 'broke the lock' : 'locked'} of ${database}: owner run ${lock.owner}, taken ${ageS}s ago${stale}`;
      return { exitCode: 0, json: { database, lock, broken: !!input.values.break }, text };
    } finally {
      await ports.close();
    }
  },
};
