import { SafeshiftError } from '../../core/errors.ts';
import { resumeStep } from '../../steps/quiesce-steps.ts';
import { runLiveness } from '../../steps/run-liveness.ts';
import type { Command } from '../command.ts';
import { table } from '../format.ts';
import { openTarget, WORKFLOW_OPTIONS } from '../local-target.ts';

/** `safeshift quiesced`: the record of quiesced APIs, loudly showing anything still stopped; `--resume` puts them back. */
export const quiescedCommand: Command = {
  name: 'quiesced',
  summary: 'show the record of quiesced APIs: what was stopped, its prior state, when it was resumed; --resume puts back what a stopped run left',
  description:
    'Exit 0 when every API is resumed; exit 3 when something is still quiesced (a run that needs an operator), so a pipeline can alert on it. ' +
    'With --resume, every API still recorded as quiesced is put back to the prior state its ' +
    'run recorded and marked resumed (a run still recorded as running is refused unless --force).',
  examples: ['safeshift quiesced', 'safeshift quiesced --active --json', 'safeshift quiesced --resume --database shop'],
  options: {
    ...WORKFLOW_OPTIONS,
    active: { type: 'boolean', description: 'only APIs not resumed yet' },
    resume: { type: 'boolean', description: 'put every API still quiesced back to its recorded prior state' },
    force: { type: 'boolean', description: 'with --resume: also for a run the ledger still calls running (make sure its process is gone)' },
  },
  usesDatabase: true,
  async run(input) {
    const { ports, database } = await openTarget(input, { needsDir: false });
    try {
      const { ledger } = ports.ctx;
      if (input.values.resume) {
        const runIds = [...new Set((await ledger.listQuiesced({ database, active: true })).map((r) => r.runId))];
        for (const runId of runIds) {
          const run = await ledger.getRun(runId);
          if (run && runLiveness(run) === 'interrupted') {
            throw new SafeshiftError(
              'RUN_INTERRUPTED',
              `run ${runId} was interrupted half-way; resuming its APIs alone would leave production where ` +
                `it stopped. \`safeshift recover --run ${runId}\` finishes or rolls it back and resumes them`,
            );
          }
          if (run?.status === 'running' && !input.values.force) {
            throw new SafeshiftError('LOCKED', `run ${runId} is still recorded as running; if its process is gone, say --force to resume what it quiesced`);
          }
          const resumed = await resumeStep({ run: { runId, database, kind: run?.kind ?? 'upgrade' } }, ports.ctx);
          input.log.info(`resumed ${resumed.apis.join(', ') || 'nothing'} (run ${runId})`);
        }
      }
      const records = await ledger.listQuiesced({ database, ...(input.values.active ? { active: true } : {}) });
      const active = records.filter((r) => r.status !== 'resumed');
      const lines =
        records.length === 0
          ? [`no APIs were quiesced for ${database}`]
          : [
              table(
                ['api', 'status', 'prior state', 'quiesced at', 'resumed at', 'run'],
                records.map((r) => [r.apiId, r.status, JSON.stringify(r.prior), r.quiescedAt, r.resumedAt, r.runId]),
              ),
            ];
      if (active.length) lines.push(`\nSTILL QUIESCED: ${active.map((r) => `${r.apiId} (run ${r.runId})`).join(', ')}`);
      for (const runId of new Set(active.map((r) => r.runId))) {
        const run = await ledger.getRun(runId);
        if (run && runLiveness(run) === 'interrupted')
          lines.push(`run ${runId} was interrupted: \`safeshift recover --run ${runId}\` finishes it or rolls it back and resumes what it stopped`);
      }
      return { exitCode: active.length ? 3 : 0, json: records, text: lines.join('\n') };
    } finally {
      await ports.close();
    }
  },
};
