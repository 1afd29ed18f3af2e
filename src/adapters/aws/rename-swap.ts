import { SafeshiftError } from '../../core/errors.ts';
import type { Tag } from '@aws-sdk/client-rds';
import { SafeshiftTagKeys, type TagMap } from './rds-tags.ts';

/** What a swap needs to know of one DB instance or cluster. */
export interface RenameSubject {
  readonly id: string;
  readonly arn: string;
  /** The RDS status, as RDS spells it (`available`, `renaming`, …). */
  readonly status: string;
  /** The identifier a rename in flight will give it (PendingModifiedValues). */
  readonly pendingId?: string;
  readonly deletionProtection: boolean;
  readonly tags: TagMap;
}

/** The RDS calls a swap makes; one implementation for instances, one for Aurora clusters. */
export interface RenameDriver {
  /** `DB instance` or `DB cluster`, for messages. */
  readonly noun: string;
  describe(id: string): Promise<RenameSubject | undefined>;
  /** Renames at once (ApplyImmediately); `deletionProtection` is set in the same call when given. */
  rename(id: string, newId: string, deletionProtection?: boolean): Promise<void>;
  addTags(arn: string, tags: Tag[]): Promise<void>;
  removeTags(arn: string, keys: string[]): Promise<void>;
}

/**
 * Where a swap stands. `retiring-production`: production is being (or is about to be) renamed to the
 * retired id; `promoting-replacement`: the replacement is being (or is about to be) renamed to the
 * production id; `done`: production's identifier names the replacement and the retired one exists.
 */
export type SwapPhase = 'retiring-production' | 'promoting-replacement' | 'done';

export interface SwapProgress {
  readonly phase: SwapPhase;
  /** What this call did or waits for, for the log. */
  readonly detail: string;
}

/**
 * A swap is two renames, and RDS needs minutes for each; the state machine waits between calls.
 * Thrown by `swap()` while the swap is not complete: the Task is retried after a wait (ASL Retry on
 * the error name `SWAP_IN_PROGRESS`), and the next call picks up where this one left off.
 */
export class SwapInProgressError extends SafeshiftError {
  readonly phase: SwapPhase;
  constructor(progress: SwapProgress) {
    super('SWAP_IN_PROGRESS', `swap in progress (${progress.phase}): ${progress.detail}; call swap again after a wait to continue it`, {
      outcome: 'needs-operator',
      details: { phase: progress.phase, retryable: true },
    });
    this.name = 'SwapInProgressError';
    this.phase = progress.phase;
  }
}

/**
 * Takes the next step of putting `replacement` in the place of `production`, keeping the old
 * production as `retiredId`, and says where the swap stands. Each call looks at all three identifiers
 * first and does at most one rename, so calling it again (a retry, or the next poll) is always safe:
 *
 * 1. both exist, nothing at `retiredId`: once both are `available`, production is renamed to `retiredId`;
 * 2. production's id is free, the retired one exists: the retired one is tagged `kind=retired` (so
 *    cleanup may delete it), the replacement loses its `kind` tag (write-ahead: it is about to be
 *    production, which must never be deletable) and is renamed to production's id, taking over the
 *    retired one's deletion protection;
 * 3. production's id names a swapped-in safeshift database, the retired one exists, the replacement
 *    id is free: done, and nothing is called.
 *
 * Only a database safeshift made for this production (its `safeshift:database` tag) is swapped in.
 *
 * @example
 * ```ts
 * let progress;
 * do { progress = await swapStep(driver, 'shop', 'ss-new-shop-1a2b', 'ss-old-shop-1a2b'); await sleep(30_000); }
 * while (progress.phase !== 'done');
 * ```
 */
export async function swapStep(driver: RenameDriver, production: string, replacement: string, retiredId: string): Promise<SwapProgress> {
  if (new Set([production, replacement, retiredId]).size !== 3) {
    throw new SafeshiftError('BAD_OPTION', `a swap needs three different identifiers, got ${production}, ${replacement}, ${retiredId}`);
  }
  const [prod, repl, retired] = await Promise.all([driver.describe(production), driver.describe(replacement), driver.describe(retiredId)]);
  const noun = driver.noun;

  if (prod && retired && !repl) {
    if (prod.tags[SafeshiftTagKeys.database] !== production) {
      throw new SafeshiftError(
        'INVALID_STATE',
        `${retiredId} exists and ${replacement} does not, but ${noun} ${production} is not the swapped-in ` +
          `replacement (it has no ${SafeshiftTagKeys.database}=${production} tag); look at all three before going on`,
      );
    }
    return { phase: 'done', detail: `${production} already is the former ${replacement}; the old one is ${retiredId}` };
  }
  if (!repl) {
    if (!prod && retired) return { phase: 'promoting-replacement', detail: `${replacement} is being renamed to ${production}` };
    throw notFound(noun, replacement, 'the replacement');
  }
  assertSwappable(noun, repl, production);

  if (prod) {
    if (retired) {
      throw new SafeshiftError(
        'ALREADY_EXISTS',
        `cannot retire ${production} as ${retiredId}: a ${noun} with that identifier already exists; delete it or choose another id`,
      );
    }
    if (prod.pendingId === retiredId || prod.status === 'renaming')
      return { phase: 'retiring-production', detail: `${production} is being renamed to ${retiredId}` };
    // Production keeps its name until the replacement can take over at once: a replacement that
    // turns out broken must not leave the application without a database.
    if (repl.status !== 'available') return { phase: 'retiring-production', detail: `waiting for ${replacement} to be available (it is ${repl.status})` };
    if (prod.status !== 'available') return { phase: 'retiring-production', detail: `waiting for ${production} to be available (it is ${prod.status})` };
    await driver.rename(production, retiredId);
    return { phase: 'retiring-production', detail: `renaming ${production} to ${retiredId}` };
  }

  if (!retired) throw notFound(noun, production, 'production');
  if (retired.tags[SafeshiftTagKeys.kind] !== 'retired') {
    await driver.addTags(retired.arn, [
      { Key: SafeshiftTagKeys.runId, Value: repl.tags[SafeshiftTagKeys.runId] ?? '' },
      { Key: SafeshiftTagKeys.database, Value: production },
      { Key: SafeshiftTagKeys.kind, Value: 'retired' },
    ]);
  }
  if (repl.pendingId === production || repl.status === 'renaming')
    return { phase: 'promoting-replacement', detail: `${replacement} is being renamed to ${production}` };
  if (repl.status !== 'available') return { phase: 'promoting-replacement', detail: `waiting for ${replacement} to be available (it is ${repl.status})` };
  if (repl.tags[SafeshiftTagKeys.kind] !== undefined) await driver.removeTags(repl.arn, [SafeshiftTagKeys.kind]);
  await driver.rename(replacement, production, retired.deletionProtection ? true : undefined);
  return { phase: 'promoting-replacement', detail: `renaming ${replacement} to ${production}` };
}

function assertSwappable(noun: string, repl: RenameSubject, production: string): void {
  const madeFor = repl.tags[SafeshiftTagKeys.database];
  if (madeFor !== production || !repl.tags[SafeshiftTagKeys.runId]) {
    throw new SafeshiftError(
      'NOT_SAFESHIFT_RESOURCE',
      `${noun} ${repl.id} was not made by safeshift for ${production} (${SafeshiftTagKeys.database} is ${madeFor ?? 'not set'}); it will not be swapped in`,
    );
  }
}

function notFound(noun: string, id: string, role: string): SafeshiftError {
  return new SafeshiftError('DATABASE_NOT_FOUND', `${role} ${noun} ${id} does not exist; nothing was renamed`);
}
