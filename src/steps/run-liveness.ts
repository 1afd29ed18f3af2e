import { hostname } from 'node:os';
import type { RunOwner, RunRecord } from '../ports.ts';

/** How often a live local run says so (its heartbeat, and its lock's renewal). */
export const HEARTBEAT_INTERVAL_MS = 2_000;
/**
 * A local run whose heartbeat is older than this is interrupted even when a process with its pid
 * exists (another host, a reused pid, a stopped process): ten missed beats.
 */
export const HEARTBEAT_STALE_MS = 20_000;
/** The lock a local run holds lapses this long after its last renewal, so a dead run's lock shows as stale within minutes, not hours. */
export const LOCAL_LOCK_TTL_MS = 120_000;

/**
 * `ended`: the run has its outcome. `alive`: its owner is working on it. `interrupted`: it is recorded
 * as running but its owner is gone, so nobody will finish it but `safeshift recover`. `unknown`: a run
 * with no local owner (a Step Functions execution), whose liveness the ledger cannot tell.
 */
export type RunLiveness = 'ended' | 'alive' | 'interrupted' | 'unknown';

/** This process, as a run's owner. */
export function thisProcess(startedAt = new Date()): RunOwner {
  return { pid: process.pid, host: hostname(), startedAt: startedAt.toISOString() };
}

/** Whether a process with this pid exists on this host (signal 0 checks without signalling). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, owned by someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether a run is still being worked on, from its record alone: its owner's process on this host,
 * and its heartbeat.
 *
 * @example
 * ```ts
 * runLiveness(await ledger.getRun(id)) // 'interrupted' after its process was killed
 * ```
 */
export function runLiveness(run: RunRecord, now = Date.now()): RunLiveness {
  if (run.status !== 'running') return 'ended';
  const owner = run.owner;
  if (!owner) return 'unknown';
  if (owner.host === hostname() && !processExists(owner.pid)) return 'interrupted';
  const beat = Date.parse(run.heartbeatAt ?? owner.startedAt);
  return Number.isNaN(beat) || now - beat > HEARTBEAT_STALE_MS ? 'interrupted' : 'alive';
}

/** A run's status as people should read it: `interrupted` for a run whose owner is gone. */
export function shownStatus(run: RunRecord): RunRecord['status'] | 'interrupted' {
  return runLiveness(run) === 'interrupted' ? 'interrupted' : run.status;
}

/** The sentence that tells a person an interrupted run is waiting for them, and the one command. */
export function interruptedNote(run: RunRecord): string {
  const where = run.checkpoint ? ` at ${run.checkpoint.state}` : ' before its first step finished';
  const who = run.owner ? ` (its process ${run.owner.pid} on ${run.owner.host} is gone)` : '';
  return (
    `${run.kind} run ${run.runId} of "${run.database}" was interrupted${where}${who}; \`safeshift ` +
    `recover --database ${run.database}\` finishes it or rolls it back and resumes every API`
  );
}
