import type { Command } from '../command.ts';
import { table } from '../format.ts';
import { openTarget, WORKFLOW_OPTIONS } from '../local-target.ts';

/** `safeshift snapshots`: the snapshots recorded for a database, the ones `restore` accepts. */
export const snapshotsCommand: Command = {
  name: 'snapshots',
  summary: 'list the pre-upgrade and safety snapshots recorded for a database, and the databases runs replaced (kept for a while)',
  description:
    'Each pre-upgrade or safety row is a snapshot `safeshift restore --snapshot ID` accepts for this database, ' +
    'with the schema version it holds. Retired and failed rows are databases a run replaced, ' +
    "which may hold writes nothing else has: kept until the time shown, then deleted by a later run's cleanup.",
  examples: ['safeshift snapshots', 'safeshift snapshots --json'],
  options: { ...WORKFLOW_OPTIONS, all: { type: 'boolean', description: 'include rehearsal and deleted snapshots' } },
  usesDatabase: true,
  async run(input) {
    const { ports, database } = await openTarget(input, { needsDir: false });
    try {
      const all = await ports.ctx.ledger.listSnapshots(database);
      const shown = input.values.all ? all : all.filter((s) => s.kind !== 'rehearsal' && s.status === 'available');
      const text =
        shown.length === 0
          ? `no restorable snapshots recorded for ${database}`
          : table(
              ['snapshot', 'kind', 'version', 'taken', 'status', 'kept until', 'run'],
              shown.map((s) => [
                s.snapshotId,
                s.kind,
                s.schemaVersion,
                s.createdAt.replace('T', ' ').slice(0, 19),
                s.status,
                s.keepUntil?.replace('T', ' ').slice(0, 19),
                s.runId,
              ]),
            );
      return { exitCode: 0, json: shown, text };
    } finally {
      await ports.close();
    }
  },
};
