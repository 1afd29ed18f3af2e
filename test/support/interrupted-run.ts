/**
 * A workflow run in a process of its own, which kills itself (or signals itself) at a chosen moment:
 * the orchestrator dying half-way, as `kill -9` or Ctrl-C would do it to the CLI. Started by
 * `interruptedRun()` (interruption.ts) with its configuration as JSON in argv[2].
 */
import { register } from 'tsx/esm/api';
import { openLocalPorts, runWorkflow } from '../../src/adapters/local/local-workflows.ts';
import type { StepInvoker } from '../../src/adapters/local/local-runner.ts';
import { runStep } from '../../src/steps/registry.ts';
import type { InterruptConfig } from './interruption.ts';

// The bundle is plain JavaScript; the example's .ts migrations still need tsx, as the CLI has it.
register();
const config = JSON.parse(process.argv[2] ?? '{}') as InterruptConfig;
const log = {
  info: () => undefined,
  warn: (m: string) => {
    process.stderr.write(`${m}\n`);
  },
};
const ports = await openLocalPorts({ serverUrl: config.serverUrl, database: config.input.database, migrationsDir: config.migrationsDir, log });
const at = config.at;
let entries = 0;

function signal(state: string): void {
  process.stdout.write(`signal ${config.signal} at ${state} (${at?.moment})\n`);
  // 'none': only say so; the test does the rest (stops PostgreSQL, kills this process).
  if (config.signal === 'none') return;
  process.kill(process.pid, config.signal);
  if (config.signal === 'SIGINT' && config.twice) setTimeout(() => process.kill(process.pid, config.signal), 20);
}

const invoke: StepInvoker = async (step, input, stateName, ctx) => {
  const hit = stateName === at?.state && ++entries === (at.entry ?? 1);
  if (hit && at.moment === 'before') signal(stateName);
  if (hit && at.moment === 'during') setTimeout(() => signal(stateName), at.afterMs ?? 100);
  const result = await runStep(step, input, ctx);
  if (hit && at.moment === 'after') {
    signal(stateName);
    // A signal is handled on the next turn of the event loop: let it land before the machine goes on.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return result;
};

const report = await runWorkflow(ports, config.input, { invoke, retryIntervalMs: 20, stopOnSignals: true });
process.stdout.write(`${JSON.stringify({ status: report.run.status, error: report.run.error ?? null })}\n`);
await ports.close();
