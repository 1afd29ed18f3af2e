import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafeshiftError } from '../src/core/errors.ts';
import type { Logger } from '../src/core/logger.ts';
import type { Connector, Fleet, Ledger, QuiescerFactory } from '../src/ports.ts';
import type { StepContext } from '../src/steps/context.ts';
import { runStep, type StepInput, type StepName } from '../src/steps/registry.ts';
import type { RunInput, WorkflowState } from '../src/steps/state.ts';
import { toStepError } from '../src/steps/step-error.ts';
import { useCompiledMigrations } from './compiled-migrations.ts';
import { BundleFolders, readStepSettings, type StepSettings } from './environment.ts';
import { STEP_NEEDS, type StepPort } from './step-needs.ts';

/** Makes one port from the deployment's settings (lambdas/ports/ has one file per port). */
export type PortFactory<P> = (settings: StepSettings, log: Logger) => P;

/** The port factories a handler bundles: exactly the ones STEP_NEEDS lists for its step. */
export interface StepPorts {
  readonly fleet?: PortFactory<Fleet>;
  readonly connector?: PortFactory<Connector>;
  readonly ledger?: PortFactory<Ledger>;
  readonly quiescers?: PortFactory<QuiescerFactory>;
}

/** What a handler may be given instead of the Lambda environment; tests hand in their own. */
export interface StepHandlerOptions {
  /** @default read from process.env at the first invocation */
  readonly settings?: () => StepSettings;
  /** The folder holding `migrations/` and `verify/`. @default LAMBDA_TASK_ROOT, else the bundle's folder */
  readonly bundleDir?: string;
}

/** A step Lambda's handler: the Task's `{ state, args }` in, the step's output out. */
/** The part of Lambda's invocation context a step uses: how long it has left. */
export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

export type StepHandler = (event: StepInput, invocation?: InvocationContext) => Promise<unknown>;

/**
 * Builds the AWS StepContext of a step from the deployment's settings: the ports it needs (each
 * made once per cold start), a stand-in for each port it does not need that fails loudly if called,
 * and the migrations and verify checks bundled next to the handler.
 *
 * @example
 * ```ts
 * const ctx = awsStepContext('finish', { ledger: ledgerPort }, readStepSettings(process.env), '/var/task', log);
 * ```
 */
export function awsStepContext(step: StepName, ports: StepPorts, settings: StepSettings, bundleDir: string, log: Logger): StepContext {
  const migrationsDir = path.join(bundleDir, BundleFolders.migrations);
  if (STEP_NEEDS[step].migrations === true) useCompiledMigrations(migrationsDir);
  return {
    fleet: ports.fleet?.(settings, log) ?? absent(step, 'fleet'),
    connector: ports.connector?.(settings, log) ?? absentConnector(step),
    ledger: ports.ledger?.(settings, log) ?? absent(step, 'ledger'),
    quiescers: ports.quiescers?.(settings, log) ?? absent(step, 'quiescers'),
    migrationsDir,
    verifyDir: path.join(bundleDir, BundleFolders.verify),
    history: settings.history,
    log,
  };
}

/**
 * Makes the handler of one step, given the port factories it bundles (checked against STEP_NEEDS
 * when the module loads, so a handler file and the IAM grants cannot disagree). It checks the run
 * against the deployment (only the configured database, only the configured quiescers), runs the
 * step, and turns any failure into the error a state machine matches: its name is the stable code
 * (`LOCKED`, `MIGRATION_FAILED`, `Transient`, …), its message the JSON the finishing step records.
 * Nothing from the input is logged, and credentials never enter it: the connector fetches them by
 * the secret's ARN.
 *
 * @example
 * ```ts
 * // lambdas/finish.ts
 * export const handler = createStepHandler('finish', { ledger: ledgerPort });
 * ```
 */
export function createStepHandler(step: StepName, ports: StepPorts, options: StepHandlerOptions = {}): StepHandler {
  const given = (Object.keys(ports) as StepPort[]).filter((p) => ports[p]).sort();
  const needed = [...STEP_NEEDS[step].ports].sort();
  if (given.join() !== needed.join()) {
    throw new SafeshiftError('INTERNAL', `the ${step} handler bundles ports ${given.join(', ') || 'none'} but STEP_NEEDS lists ${needed.join(', ') || 'none'}`);
  }
  let settings: StepSettings | undefined;
  let ctx: StepContext | undefined;
  // The context (and the adapters' log lines) outlive one invocation; each invocation logs under its own run id.
  let current = jsonLogger({ step });
  const log: Logger = { info: (m) => current.info(m), warn: (m) => current.warn(m) };
  return async (event, invocation) => {
    const runId = (event as { state?: { run?: { runId?: unknown } } } | undefined)?.state?.run?.runId;
    current = jsonLogger({ step, ...(typeof runId === 'string' ? { runId } : {}) });
    try {
      settings ??= (options.settings ?? (() => readStepSettings(process.env)))();
      const input = checkInput(event, settings);
      ctx ??= awsStepContext(step, ports, settings, options.bundleDir ?? handlerDir(), log);
      // The step bounds its SQL by the invocation's remaining time, so nothing it starts outlives the Lambda.
      const deadline = invocation ? Date.now() + invocation.getRemainingTimeInMillis() : undefined;
      return await runStep(step, input, deadline === undefined ? ctx : { ...ctx, deadline });
    } catch (error) {
      const stepError = toStepError(error);
      log.warn(`${step} failed with ${stepError.name}`);
      throw stepError;
    }
  };
}

/**
 * Checks the Task input and fills in what the deployment decides: the database (a run that names
 * another is refused: this deployment's IAM role may only touch its own) and the quiescers (a run
 * may name a subset of the configured ones, never another).
 */
function checkInput(event: StepInput, settings: StepSettings): StepInput {
  const run = (event as { state?: { run?: Partial<RunInput> } } | undefined)?.state?.run;
  if (!run || typeof run !== 'object' || typeof run.runId !== 'string' || !run.runId || typeof run.kind !== 'string') {
    throw new SafeshiftError(
      'BAD_OPTION',
      'the state machine input must be { "run": { "runId": "…", "kind": "upgrade|restore|rehearsal", … } }; ' +
        '`safeshift upgrade --state-machine-arn` writes it',
    );
  }
  if (run.database !== undefined && run.database !== settings.databaseId) {
    throw new SafeshiftError(
      'BAD_OPTION',
      `this deployment upgrades database ${settings.databaseId}, not ${run.database}; start the state machine of ${run.database}'s deployment instead`,
    );
  }
  const unknown = (run.quiesce ?? []).filter((spec) => !settings.quiesce.includes(spec));
  if (unknown.length > 0) {
    throw new SafeshiftError(
      'BAD_OPTION',
      `quiescer ${unknown.join(', ')} is not configured for this deployment (it has ${settings.quiesce.join(', ') || 'none'}); ` +
        `add it to the SafeUpgrade construct's quiesce list and redeploy`,
    );
  }
  const state: WorkflowState = { ...event.state, run: { ...run, database: settings.databaseId, quiesce: run.quiesce ?? settings.quiesce } as RunInput };
  return { state, ...(event.args ? { args: event.args } : {}) };
}

/** Each port's interface, by its name in STEP_NEEDS. */
interface PortOf {
  readonly fleet: Fleet;
  readonly connector: Connector;
  readonly ledger: Ledger;
  readonly quiescers: QuiescerFactory;
}

/** A port the step was not given: any call is a bug in STEP_NEEDS, reported as such. */
function absent<K extends StepPort>(step: StepName, port: K): PortOf[K] {
  // Every member is a function that throws, so the empty target stands for any port.
  return new Proxy({} as PortOf[K], {
    get: (_target, member) => {
      if (typeof member !== 'string' || member === 'then') return undefined;
      return () => {
        throw new SafeshiftError(
          'INTERNAL',
          `the ${step} step called ${port}.${member}, but its Lambda was built without the ${port} port; add it to STEP_NEEDS.${step}`,
        );
      };
    },
  });
}

/** Without a connector, `disconnectAll` keeps its AWS meaning (a no-op); `connect` is a bug. */
function absentConnector(step: StepName): Connector {
  const missing = absent(step, 'connector');
  return { connect: (id) => missing.connect(id), endRunSessions: (id, run) => missing.endRunSessions(id, run), disconnectAll: async () => {} };
}

/** The folder of the running bundle, where the migrations and verify folders were copied. */
function handlerDir(): string {
  return process.env.LAMBDA_TASK_ROOT ?? path.dirname(fileURLToPath(import.meta.url));
}

/** One JSON object per line, which CloudWatch Logs Insights can query by field. */
function jsonLogger(fields: Record<string, string>): Logger {
  const write = (level: string, message: string) => {
    process.stdout.write(`${JSON.stringify({ level, ...fields, message })}\n`);
  };
  return { info: (m) => write('info', m), warn: (m) => write('warn', m) };
}
