import { SafeshiftError } from '../core/errors.ts';
import type { ResourceStatus, SnapshotKind } from '../ports.ts';
import type { StepContext } from './context.ts';
import { nowIso } from './context.ts';
import { resourceName, type ResourceRole } from './names.ts';
import { schemaVersionOf } from './run-steps.ts';
import type { PollState, WorkflowState } from './state.ts';
import { markForFence, proveUnwritten } from './write-fence-steps.ts';

/** Where a step's fleet work happens: production itself or a resource of the run. */
export type Target = 'production' | ResourceRole;

/** The identifier a target has in this run. */
export function targetId(state: WorkflowState, target: Target): string {
  return target === 'production' ? state.run.database : resourceName(target, state.run.database, state.run.runId);
}

const FIRST_WAIT_S = 5;
const MAX_WAIT_S = 60;
/** A snapshot or restore still not done after this long fails the run with a clear error. */
const POLL_TIMEOUT_MS = 4 * 3_600_000;

function firstPoll(ctx: StepContext, ready: boolean): PollState {
  return { ready, attempt: 0, waitSeconds: FIRST_WAIT_S, startedAt: nowIso(ctx) };
}

function nextPoll(ctx: StepContext, prev: PollState | undefined, status: ResourceStatus, what: string): PollState {
  if (status === 'failed') throw new SafeshiftError('INVALID_STATE', `${what} failed; see the database service's events for why`);
  if (status === 'missing') throw new SafeshiftError('SNAPSHOT_NOT_FOUND', `${what} does not exist (deleted while the run waited?)`);
  const startedAt = prev?.startedAt ?? nowIso(ctx);
  if (status !== 'available' && Date.now() - Date.parse(startedAt) > POLL_TIMEOUT_MS) {
    throw new SafeshiftError('POLL_TIMEOUT', `${what} is still not available after ${Math.round(POLL_TIMEOUT_MS / 60_000)} minutes; the run gives up`);
  }
  // Intervals grow so a long snapshot costs few state transitions, and are capped so a finished one is seen soon.
  const waitSeconds = Math.min(MAX_WAIT_S, Math.max(FIRST_WAIT_S, Math.round((prev?.waitSeconds ?? FIRST_WAIT_S) * 1.5)));
  return { ready: status === 'available', attempt: (prev?.attempt ?? 0) + 1, waitSeconds, startedAt };
}

const SNAPSHOT_KIND: Partial<Record<ResourceRole, SnapshotKind>> = {
  'rehearsal-snapshot': 'rehearsal',
  'pre-upgrade': 'pre-upgrade',
  safety: 'safety',
};

/**
 * A clone a snapshot step starts beside its snapshot, so the two copies overlap instead of following
 * each other: `from` the snapshot being made (a clone of the same moment, where the fleet can copy the
 * database twice at once) or `requested` (a restore's snapshot, independent of this one). `strategy`
 * limits it to upgrades with that strategy.
 */
export interface AlongsideClone {
  readonly from: ResourceRole | 'requested';
  readonly role: ResourceRole;
  readonly strategy?: 'in-place' | 'swap';
}

/**
 * Starts a snapshot of production (write-ahead: the ledger records it before the fleet makes it),
 * and with `clone` a clone beside it; the state that later starts that clone finds it made and reuses it.
 */
export async function startSnapshotStep(state: WorkflowState, args: { role: ResourceRole; clone?: AlongsideClone }, ctx: StepContext): Promise<PollState> {
  const kind = SNAPSHOT_KIND[args.role];
  if (!kind) throw new SafeshiftError('INTERNAL', `${args.role} is not a snapshot role`);
  const snapshotId = targetId(state, args.role);
  const { run } = state;
  const existing = await ctx.ledger.getSnapshot(snapshotId);
  await ctx.ledger.putSnapshot({
    snapshotId,
    database: run.database,
    kind,
    runId: run.runId,
    createdAt: existing?.createdAt ?? nowIso(ctx),
    schemaVersion: existing?.schemaVersion ?? (await schemaVersionOf(ctx, run.database)),
    status: existing?.status === 'available' ? 'available' : 'creating',
  });
  if (kind === 'pre-upgrade') await ctx.ledger.updateRun(run.runId, { snapshotId });
  if (kind === 'safety') await ctx.ledger.updateRun(run.runId, { safetySnapshotId: snapshotId });
  // The copy that may replace production later: from here on, whatever is not the run's and changes production is evidence.
  if (kind !== 'rehearsal') await markForFence(state, ctx, run.database);
  const tags = { runId: run.runId, database: run.database, kind } as const;
  const clone = args.clone && (!args.clone.strategy || args.clone.strategy === run.strategy) ? args.clone : undefined;
  const startSnapshot = () => ctx.fleet.startSnapshot(run.database, snapshotId, tags);
  if (clone?.from === args.role && ctx.fleet.startSnapshotAndClone) {
    await ctx.fleet.startSnapshotAndClone(run.database, snapshotId, targetId(state, clone.role), tags);
  } else if (!clone || clone.from === args.role) {
    // Without the fleet's help a clone of this snapshot must wait for it: its own state makes it then.
    await startSnapshot();
  } else if (ctx.fleet.copiesWhileStarting) {
    // Both are awaited, so no side effect of this Task is still under way when it fails.
    const results = await Promise.allSettled([startSnapshot(), startCloneStep(state, clone, ctx)]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } else {
    // The snapshot first: when it is refused (a quota, a key) no clone is left being created.
    await startSnapshot();
    await startCloneStep(state, clone, ctx);
  }
  return firstPoll(ctx, false);
}

/** Checks a snapshot; marks it available in the ledger when it is. */
export async function checkSnapshotStep(state: WorkflowState, args: { role: ResourceRole }, ctx: StepContext): Promise<PollState> {
  const snapshotId = targetId(state, args.role);
  const poll = nextPoll(ctx, state.poll, await ctx.fleet.snapshotStatus(snapshotId), `snapshot ${snapshotId}`);
  if (poll.ready) {
    const record = await ctx.ledger.getSnapshot(snapshotId);
    if (record && record.status !== 'available') {
      await ctx.ledger.putSnapshot({ ...record, status: 'available', durationMs: Math.max(0, Date.now() - Date.parse(record.createdAt)) });
    }
  }
  return poll;
}

/** Starts a database from a snapshot of the run (or, `from: 'requested'`, the snapshot a restore names). */
export async function startCloneStep(
  state: WorkflowState,
  args: { from: ResourceRole | 'requested'; role: ResourceRole },
  ctx: StepContext,
): Promise<PollState> {
  // A rehearsal clones live production where the fleet can (Aurora copy-on-write): same data, no restore.
  const live = args.from === 'rehearsal-snapshot' ? ctx.fleet.liveCloneSource?.(state.run.database) : undefined;
  const snapshotId = live ?? (args.from === 'requested' ? state.run.snapshotId : targetId(state, args.from));
  if (!snapshotId) throw new SafeshiftError('BAD_OPTION', 'no snapshot to restore was given');
  await ctx.fleet.startClone(snapshotId, targetId(state, args.role), { runId: state.run.runId, database: state.run.database, kind: 'clone' });
  return firstPoll(ctx, false);
}

/** Checks a database being created from a snapshot. */
export async function checkDatabaseStep(state: WorkflowState, args: { role: ResourceRole }, ctx: StepContext): Promise<PollState> {
  const id = targetId(state, args.role);
  return nextPoll(ctx, state.poll, await ctx.fleet.databaseStatus(id), `database ${id}`);
}

/** What each swap discards of production if someone else wrote to it, in the words of the write fence's refusal. */
const SWAP_WORDS: Partial<Record<ResourceRole, string>> = {
  new: 'swapping in the migrated clone',
  retired: 'swapping the old production back',
};

/**
 * Puts a replacement in production's place; the old production keeps the `retired` role's name.
 * Once production's sessions are ended, and before the swap, the write fence proves that nothing but
 * the run changed production since its mark, and marks the replacement, which may be swapped back.
 */
export async function swapStep(state: WorkflowState, args: { replacement: ResourceRole; retired: ResourceRole }, ctx: StepContext) {
  const production = state.run.database;
  const replacement = targetId(state, args.replacement);
  const retired = targetId(state, args.retired);
  const rollingBack = args.retired === 'failed';
  await ctx.connector.disconnectAll(production);
  // A repeated delivery after the swap finds no replacement left to bring in; the first one proved it.
  if (ctx.writeFence && (await ctx.fleet.databaseStatus(replacement)) === 'available') {
    const what = SWAP_WORDS[args.replacement] ?? (rollingBack ? 'restoring the pre-upgrade snapshot' : 'bringing back the chosen snapshot');
    await proveUnwritten(state, ctx, { what, rollingBack });
    await markForFence(state, ctx, replacement);
  }
  await ctx.fleet.swap(production, replacement, retired);
  return { production, replacement, retired, at: nowIso(ctx) };
}

/** Roles whose databases a run creates and never keeps. */
const TEMPORARY_DATABASES: readonly ResourceRole[] = ['rehearsal-clone', 'new', 'restored'];
/**
 * Databases a run replaced, kept for a while: the production a forward swap retired, the production a
 * rollback replaced. Either may hold writes made after the snapshot (an API that did not stay quiesced).
 */
const KEPT_DATABASES = ['retired', 'failed'] as const;
/** How long a replaced database is kept before a later cleanup deletes it. @default 72 h */
const DEFAULT_KEEP_HOURS = 72;

/**
 * Deletes what the run made and does not keep: clones and the rehearsal snapshot. Pre-upgrade and
 * safety snapshots stay (they are what Restore offers), and so do the databases the run replaced,
 * recorded in the ledger with the time until which they are kept; kept databases of this production
 * whose time has passed are deleted here.
 */
export async function cleanupStep(state: WorkflowState, ctx: StepContext) {
  const { run } = state;
  const deleted: string[] = [];
  const kept: string[] = [];
  for (const role of TEMPORARY_DATABASES) {
    const id = targetId(state, role);
    if (id === run.database) continue;
    if ((await ctx.fleet.databaseStatus(id)) !== 'missing') {
      await ctx.fleet.deleteDatabase(id);
      deleted.push(id);
    }
  }
  const now = ctx.now?.() ?? new Date();
  for (const role of KEPT_DATABASES) {
    const id = targetId(state, role);
    if (id === run.database || (await ctx.fleet.databaseStatus(id)) === 'missing') continue;
    const existing = await ctx.ledger.getSnapshot(id);
    const keepUntil = existing?.keepUntil ?? new Date(now.getTime() + (run.keepReplacedHours ?? DEFAULT_KEEP_HOURS) * 3_600_000).toISOString();
    await ctx.ledger.putSnapshot({
      snapshotId: id,
      database: run.database,
      kind: role,
      runId: run.runId,
      createdAt: existing?.createdAt ?? now.toISOString(),
      schemaVersion: existing?.schemaVersion ?? null,
      status: 'available',
      keepUntil,
    });
    kept.push(id);
  }
  for (const old of await ctx.ledger.listSnapshots(run.database)) {
    const expired =
      (old.kind === 'retired' || old.kind === 'failed') &&
      old.status === 'available' &&
      old.keepUntil !== undefined &&
      Date.parse(old.keepUntil) <= now.getTime();
    if (!expired || kept.includes(old.snapshotId)) continue;
    await ctx.fleet.deleteDatabase(old.snapshotId);
    await ctx.ledger.putSnapshot({ ...old, status: 'deleted' });
    deleted.push(old.snapshotId);
  }
  const rehearsalSnapshot = targetId(state, 'rehearsal-snapshot');
  if ((await ctx.fleet.snapshotStatus(rehearsalSnapshot)) !== 'missing') {
    await ctx.fleet.deleteSnapshot(rehearsalSnapshot);
    deleted.push(rehearsalSnapshot);
  }
  const record = await ctx.ledger.getSnapshot(rehearsalSnapshot);
  if (record && record.status !== 'deleted') await ctx.ledger.putSnapshot({ ...record, status: 'deleted' });
  return { deleted, kept };
}
