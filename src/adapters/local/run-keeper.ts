import type { Ledger } from '../../ports.ts';
import { HEARTBEAT_INTERVAL_MS } from '../../steps/run-liveness.ts';

/** A running heartbeat; `stop` waits for a beat under way, so none lands after the run is over. */
export interface Heartbeat {
  stop(): Promise<void>;
}

/**
 * Says the run is alive every {@link HEARTBEAT_INTERVAL_MS}: its record's `heartbeatAt`, and its lock
 * moved on by `ttlMs` (only while the run still holds it, so a released lock is never taken back).
 * A beat that fails (the ledger briefly away) is skipped; the next one tries again.
 */
export function startHeartbeat(ledger: Ledger, database: string, runId: string, ttlMs: number): Heartbeat {
  let beating: Promise<void> = Promise.resolve();
  const beat = async () => {
    // Before the first step has recorded the run there is nothing to renew.
    await ledger.updateRun(runId, { heartbeatAt: new Date().toISOString() }).catch(() => undefined);
    await ledger.renewLock?.(database, runId, ttlMs).catch(() => false);
  };
  const timer = setInterval(() => {
    beating = beating.then(beat);
  }, HEARTBEAT_INTERVAL_MS);
  return {
    stop: async () => {
      clearInterval(timer);
      await beating;
    },
  };
}

/** What a run does on Ctrl-C (SIGINT) or SIGTERM. */
export interface StopSignalHandlers {
  /** The first signal: ask the run to stop at its next safe point. */
  readonly onFirst: (reason: string) => void;
  /** The second: say what is left, just before the process exits with 128 + the signal's number. */
  readonly onSecond: (signal: NodeJS.Signals) => void;
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15 };

/**
 * Takes SIGINT and SIGTERM from Node's default (exit at once) for as long as a run goes on: the first
 * asks it to stop safely, the second exits, leaving the checkpoint for `safeshift recover`.
 */
export function watchStopSignals(handlers: StopSignalHandlers): { dispose(): void } {
  let seen = 0;
  const listener = (signal: NodeJS.Signals) => {
    seen++;
    if (seen === 1) {
      handlers.onFirst(`${signal} received`);
      return;
    }
    handlers.onSecond(signal);
    process.exit(128 + (SIGNAL_NUMBERS[signal] ?? 1));
  };
  process.on('SIGINT', listener);
  process.on('SIGTERM', listener);
  return {
    dispose: () => {
      process.off('SIGINT', listener);
      process.off('SIGTERM', listener);
    },
  };
}
