import type { Command } from '../command.ts';
import { table } from '../format.ts';
import { openTarget, WORKFLOW_OPTIONS } from '../local-target.ts';

/** `safeshift quiesced`: the record of quiesced APIs, loudly showing anything still stopped. */
export const quiescedCommand: Command = {
  name: 'quiesced',
  summary: 'show the record of quiesced APIs: what was stopped, its prior state, when it was resumed',
  description: 'Exit 0 when every API is resumed; exit 3 when something is still quiesced (a run that needs an operator), so a pipeline can alert on it.',
  examples: ['safeshift quiesced', 'safeshift quiesced --active --json'],
  options: { ...WORKFLOW_OPTIONS, active: { type: 'boolean', description: 'only APIs not resumed yet' } },
  usesDatabase: true,
  async run(input) {
    const { ports, database } = await openTarget(input, { needsDir: false });
    try {
      const records = await ports.ctx.ledger.listQuiesced({ database, ...(input.values.active ? { active: true } : {}) });
      const active = records.filter((r) => r.status !== 'resumed');
      const lines = records.length === 0 ? [`no APIs were quiesced for ${database}`] : [table(['api', 'status', 'prior state', 'quiesced at', 'resumed at', 'run'],
        records.map((r) => [r.apiId, r.status, JSON.stringify(r.prior), r.quiescedAt, r.resumedAt, r.runId]))];
      if (active.length) lines.push(`\nSTILL QUIESCED: ${active.map((r) => `${r.apiId} (run ${r.runId})`).join(', ')}`);
      return { exitCode: active.length ? 3 : 0, json: records, text: lines.join('\n') };
    } finally {
      await ports.close();
    }
  },
};
