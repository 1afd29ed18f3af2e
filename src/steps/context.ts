import type { HistoryLocation } from '../core/history.ts';
import type { Logger } from '../core/logger.ts';
import type { Connector, Fleet, Ledger, QuiescerFactory, RunOwner, WriteFence } from '../ports.ts';

/**
 * What every step is given besides its input: the ports, and where the migrations are. The same
 * steps run in a Lambda (AWS adapters) and in the local runner (local adapters).
 */
export interface StepContext {
  readonly fleet: Fleet;
  readonly connector: Connector;
  readonly ledger: Ledger;
  readonly quiescers: QuiescerFactory;
  /**
   * The server's own proof of who changed production (ports.ts WriteFence), where the runtime has one
   * (locally: the write-ahead log). Without it the quiescers alone vouch that nothing else wrote.
   */
  readonly writeFence?: WriteFence;
  /** The migrations folder (bundled into the Lambda on AWS). */
  readonly migrationsDir: string;
  /** The folder of `verify/*.sql` checks; none when undefined. */
  readonly verifyDir?: string;
  readonly history: HistoryLocation;
  readonly log: Logger;
  /** How long a run may hold the database's lock before it counts as stale. @default 6 h */
  readonly lockTtlMs?: number;
  readonly now?: () => Date;
  /**
   * When this invocation must be done (epoch ms): the Lambda's remaining time, or the local Task's
   * timeout. Steps bound their SQL by it, so nothing they start outlives the Task. None: unbounded.
   */
  readonly deadline?: number;
  /** The local process running the run, recorded with it so others can tell when it is gone. None on AWS. */
  readonly owner?: RunOwner;
}

/** Milliseconds left before the invocation's deadline, less a margin to report a timeout cleanly; undefined when unbounded. */
export function remainingMs(ctx: StepContext, marginMs = 5000): number | undefined {
  if (ctx.deadline === undefined) return undefined;
  return Math.max(1000, ctx.deadline - Date.now() - marginMs);
}

/** The current time as an ISO string. */
export function nowIso(ctx: StepContext): string {
  return (ctx.now?.() ?? new Date()).toISOString();
}
