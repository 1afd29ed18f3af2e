import type { StepInvoker } from '../../src/adapters/local/local-runner.ts';
import type { Connector, QueryResult, Quiescer, QuiescerFactory, SqlSession } from '../../src/ports.ts';
import type { StepContext } from '../../src/steps/context.ts';
import { runStep, type StepName } from '../../src/steps/registry.ts';

/**
 * How a fault hits one port call:
 * - `before`: the call throws without reaching the port (the write-ahead record before it was made,
 *   the side effect was not);
 * - `after`: the port does its work, then the call throws (the effect happened, the answer was lost);
 * - `still-running` (only {@link MIGRATION_QUERY}): the query is sent and the step is told it failed
 *   {@link PortFaultOptions.stillRunningMs} later while the server goes on running it, as when a Task
 *   times out or its Lambda dies mid-migration. The step can no longer use that session (a dead
 *   Lambda's connection is not its own any more); the server ends it when the query is done.
 */
export type PortFaultMode = 'before' | 'after' | 'still-running';

/**
 * The pseudo-method of a migrate step's session: a query that applies a migration. For a migration in
 * a transaction that is the query that commits it (a SQL migration's one round trip: its text, its
 * history row, `commit`; a scripted one's `commit`), which decides whether it happened at all; for a
 * no-transaction migration, each of its own statements, whose effect stays whatever the call says.
 * {@link PortCall.applies} tells the two apart.
 */
export const MIGRATION_QUERY = 'Session.migration';

/**
 * The port calls that change something, by `Port.method`: the ones a fault is worth injecting at.
 * The rest (statuses, reads, listings, `check`/`capture`/`stillQuiesced`) are recorded but not faulted.
 */
export const MUTATING_CALLS: readonly string[] = [
  'Fleet.startSnapshot',
  'Fleet.startSnapshotAndClone',
  'Fleet.startClone',
  'Fleet.swap',
  'Fleet.deleteDatabase',
  'Fleet.deleteSnapshot',
  'Ledger.putSnapshot',
  'Ledger.updateRun',
  'Ledger.putQuiesce',
  'Ledger.releaseLock',
  'Quiescer.quiesce',
  'Quiescer.resume',
  MIGRATION_QUERY,
];

/** One fault: the `call`-th call (1-based, counted per run per method) of `method` fails as `mode` says. */
export interface PortFault {
  readonly method: string;
  readonly call: number;
  readonly mode: PortFaultMode;
  /**
   * How many calls in a row fail, from `call` on: 1 is one lost call, which a Task's retry may
   * absorb; `Infinity` is a port that keeps failing, which runs a retrying Task out of attempts.
   * @default 1
   */
  readonly times?: number;
}

/** One call a step made, in order. */
export interface PortCall {
  readonly method: string;
  /** Its number among the calls of `method` in this run, 1-based. */
  readonly call: number;
  /** The Task state whose step made it. */
  readonly state: string;
  /**
   * For {@link MIGRATION_QUERY}: `commit` when it commits a transaction (the migration happens with
   * it or not at all), `statement` when it is a statement of a no-transaction migration (what it did
   * stays, whatever the call says).
   */
  readonly applies?: 'commit' | 'statement';
}

export interface PortFaultOptions {
  /** How long a `still-running` query runs before its step is told it failed. @default 300 */
  readonly stillRunningMs?: number;
}

/** An error no port raises by itself; a plain Error subclass, so nothing classifies it as transient. */
export class InjectedPortFault extends Error {
  constructor(method: string, call: number, mode: PortFaultMode) {
    super(`injected port fault: ${method} #${call} ${mode}`);
    this.name = 'InjectedPortFault';
  }
}

/** The ports' methods that return a value rather than a promise: passed through as they are. */
const SYNCHRONOUS: ReadonlySet<string> = new Set(['liveCloneSource']);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Faults inside a step, at its calls to the ports. {@link invoke} is a `StepInvoker` for
 * `runWorkflow`'s `invoke` option: each Task's step gets the run's context with its fleet, connector,
 * ledger and quiescers wrapped, so every call a step makes is recorded (with the state that made it)
 * and the chosen ones fail. Only the steps' calls go through it: the runner's own checkpoints and the
 * heartbeat keep the unwrapped ledger, since a fault there is not a fault of a step.
 *
 * One instance per run: calls are counted from the run's first.
 *
 * @example
 * ```ts
 * const faults = new PortFaults([{ method: 'Fleet.swap', call: 1, mode: 'after' }]);
 * const report = await runWorkflow(ports, input, { invoke: faults.invoke });
 * await faults.settled(); // [] here; ['ended'] once the run ended a still-running query
 * faults.fired;           // [{ method: 'Fleet.swap', call: 1, mode: 'after' }]
 * ```
 */
export class PortFaults {
  /** Every call the steps made, in order. */
  readonly calls: PortCall[] = [];
  /** The faults that fired, one entry per failed call. */
  readonly fired: PortFault[] = [];
  private readonly counts = new Map<string, number>();
  private readonly abandoned: Promise<'completed' | 'ended'>[] = [];
  private readonly stillRunningMs: number;

  constructor(
    private readonly faults: readonly PortFault[] = [],
    options: PortFaultOptions = {},
  ) {
    this.stillRunningMs = options.stillRunningMs ?? 300;
  }

  /** Runs each Task's step with the wrapped ports. */
  readonly invoke: StepInvoker = (step, input, state, ctx) => runStep(step, input, this.wrapContext(ctx, state, step));

  /**
   * Waits until every query a `still-running` fault abandoned has ended on the server (its session
   * then closed), and says how each ended: `completed` (it ran to its end, a migration committed) or
   * `ended` (it failed: the run ended its session, or dropped its database, first).
   */
  async settled(): Promise<('completed' | 'ended')[]> {
    return Promise.all(this.abandoned);
  }

  private wrapContext(ctx: StepContext, state: string, step: StepName): StepContext {
    return {
      ...ctx,
      fleet: this.wrapPort('Fleet', ctx.fleet, state),
      ledger: this.wrapPort('Ledger', ctx.ledger, state),
      connector: this.wrapConnector(ctx.connector, state, step, ctx.history.table),
      quiescers: this.wrapQuiescers(ctx.quiescers, state),
    };
  }

  /** Counts and records a call; the fault for it, if one is due. */
  private enter(method: string, state: string, applies?: PortCall['applies']): { call: number; fault?: PortFault } {
    const call = (this.counts.get(method) ?? 0) + 1;
    this.counts.set(method, call);
    this.calls.push({ method, call, state, ...(applies ? { applies } : {}) });
    const fault = this.faults.find((f) => f.method === method && call >= f.call && call < f.call + (f.times ?? 1));
    if (fault) this.fired.push(fault);
    return fault ? { call, fault } : { call };
  }

  /** Makes one call of an async port method through its fault, if any. */
  private async through<T>(method: string, state: string, real: () => Promise<T>): Promise<T> {
    const { call, fault } = this.enter(method, state);
    if (!fault) return real();
    if (fault.mode === 'before') throw new InjectedPortFault(method, call, fault.mode);
    if (fault.mode === 'still-running') throw new Error(`${method}: a still-running fault is only for ${MIGRATION_QUERY}`);
    await real();
    throw new InjectedPortFault(method, call, fault.mode);
  }

  /**
   * Every method of a port object, called through {@link through}; properties (a fleet's
   * `copiesWhileStarting`) and absent optional methods stay as they are, since steps test for them.
   */
  private wrapPort<T extends object>(port: string, target: T, state: string): T {
    return new Proxy(target, {
      get: (t, prop) => {
        const value: unknown = Reflect.get(t, prop, t);
        if (typeof value !== 'function' || typeof prop !== 'string') return value;
        // A synchronous method (liveCloneSource) is not a call worth faulting: it changes nothing.
        if (SYNCHRONOUS.has(prop)) return value;
        const fn = value as (...args: unknown[]) => Promise<unknown>;
        return (...args: unknown[]) => this.through(`${port}.${prop}`, state, () => fn.apply(t, args));
      },
    });
  }

  private wrapQuiescers(factory: QuiescerFactory, state: string): QuiescerFactory {
    return {
      create: (spec, databaseId) => {
        const quiescer = factory.create(spec, databaseId);
        const wrapped: Quiescer = {
          id: quiescer.id,
          check: () => this.through('Quiescer.check', state, () => quiescer.check()),
          capture: () => this.through('Quiescer.capture', state, () => quiescer.capture()),
          quiesce: () => this.through('Quiescer.quiesce', state, () => quiescer.quiesce()),
          resume: (prior) => this.through('Quiescer.resume', state, () => quiescer.resume(prior)),
          stillQuiesced: () => this.through('Quiescer.stillQuiesced', state, () => quiescer.stillQuiesced()),
        };
        return wrapped;
      },
    };
  }

  private wrapConnector(connector: Connector, state: string, step: StepName, history: string): Connector {
    const port = this.wrapPort('Connector', connector, state);
    return new Proxy(port, {
      get: (t, prop) => {
        if (prop !== 'connect') return Reflect.get(t, prop, t) as unknown;
        const connect: Connector['connect'] = async (databaseId, options) => {
          const session = await t.connect(databaseId, options);
          return step === 'migrate' ? this.wrapMigrationSession(session, state, history) : session;
        };
        return connect;
      },
    });
  }

  /**
   * A migrate step's session: its migration queries (see {@link MIGRATION_QUERY}) go through the
   * faults. A `before` or `after` fault leaves the session as it is (the call failed, the port did
   * not); a `still-running` one takes it from the step.
   */
  private wrapMigrationSession(session: SqlSession, state: string, historyTable: string): SqlSession {
    let severed: Promise<unknown> | undefined;
    // Between `set lock_timeout` and `reset lock_timeout` a no-transaction migration runs its statements one by one.
    const progress: StatementProgress = { statementByStatement: false, inOwnTransaction: false, statementInTransaction: false };
    const query = async <R>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>> => {
      if (severed) throw new Error(`${MIGRATION_QUERY}: the session was taken from the step by a still-running fault`);
      if (/^set lock_timeout = \d+$/i.test(text)) progress.statementByStatement = true;
      if (/^reset lock_timeout$/i.test(text)) progress.statementByStatement = false;
      const applies = appliesMigration(text, progress, historyTable);
      if (!applies) return session.query<R>(text, values);
      return this.migrationQuery(session, state, applies, text, values, (closed) => {
        severed = closed;
      });
    };
    return {
      query,
      close: async () => {
        if (!severed) await session.close();
      },
    };
  }

  private async migrationQuery<R>(
    session: SqlSession,
    state: string,
    applies: NonNullable<PortCall['applies']>,
    text: string,
    values: readonly unknown[] | undefined,
    sever: (closed: Promise<unknown>) => void,
  ): Promise<QueryResult<R>> {
    const { call, fault } = this.enter(MIGRATION_QUERY, state, applies);
    if (fault?.mode === 'before') throw new InjectedPortFault(MIGRATION_QUERY, call, fault.mode);
    const running = session.query<R>(text, values);
    if (fault?.mode === 'still-running') {
      // The server keeps the query; its session is closed only once it has ended (or been ended by the run).
      const ended = running.then(
        () => 'completed' as const,
        () => 'ended' as const,
      );
      const closed = ended.then(async (how) => {
        await session.close();
        return how;
      });
      sever(closed);
      this.abandoned.push(closed);
      await sleep(this.stillRunningMs);
      throw new InjectedPortFault(MIGRATION_QUERY, call, fault.mode);
    }
    const result = await running;
    if (fault?.mode === 'after') throw new InjectedPortFault(MIGRATION_QUERY, call, fault.mode);
    return result;
  }
}

/**
 * Where a no-transaction migration stands in its session: statement by statement (between `set` and
 * `reset lock_timeout`), and inside one of the run's own transactions (the write fence's marks wrap a
 * statement in `begin; <mark>` … `commit`, and that commit is what applies it), with a statement of
 * the migration in it or only the history's bookkeeping.
 */
interface StatementProgress {
  statementByStatement: boolean;
  inOwnTransaction: boolean;
  statementInTransaction: boolean;
}

/**
 * Whether a query of a migrate step applies a migration: a transaction's one-round-trip query or
 * its `commit` (a scripted migration), or, statement by statement, one of a no-transaction
 * migration's own statements: run as it is, or committed in a transaction of the run's own. The
 * history's bookkeeping and the write fence's marks apply nothing.
 */
function appliesMigration(text: string, progress: StatementProgress, historyTable: string): PortCall['applies'] {
  const begins = /^begin;/i.test(text);
  const commits = /(^|;)\s*commit\s*;?\s*$/i.test(text);
  // A SQL migration's one round trip: its transaction opens and commits in this one query.
  if (begins && commits) return 'commit';
  if (commits) {
    const applied = progress.statementInTransaction;
    progress.inOwnTransaction = false;
    progress.statementInTransaction = false;
    return applied ? 'commit' : undefined;
  }
  if (begins || /^rollback$/i.test(text)) {
    progress.inOwnTransaction = begins;
    progress.statementInTransaction = false;
    return undefined;
  }
  // The engine's own reads between statements (which indexes a statement outside a transaction left half-built) apply nothing either.
  if (/^(set|reset) lock_timeout/i.test(text) || text.includes(historyTable) || /pg_logical_emit_message|\bpg_index\b/.test(text)) return undefined;
  if (progress.inOwnTransaction) {
    progress.statementInTransaction = true;
    return undefined;
  }
  return progress.statementByStatement ? 'statement' : undefined;
}
