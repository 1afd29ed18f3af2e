/** The three workflows a SafeUpgrade deployment has, each its own state machine. */
export type WorkflowKind = 'upgrade' | 'restore' | 'rehearsal';

/**
 * Tags the SafeUpgrade construct puts on each of its state machines. The pipeline trigger reads
 * them (Step Functions ListTagsForResource), so a state machine ARN alone is enough to know which
 * database it upgrades, where its ledger is and what migrations it was deployed with.
 */
export const StackTagKeys = {
  workflow: 'safeshift:workflow',
  database: 'safeshift:database',
  ledgerTable: 'safeshift:ledger-table',
  strategy: 'safeshift:strategy',
  migrationsChecksum: 'safeshift:migrations-checksum',
} as const;

/**
 * The name of a deployment's state machine: `<prefix>-<workflow>`, the prefix being the stack's name
 * unless the construct was given another. `safeshift upgrade --stack NAME` looks for this name.
 *
 * @example
 * ```ts
 * stateMachineNameOf('ShopDatabase', 'upgrade') // 'ShopDatabase-upgrade'
 * ```
 */
export function stateMachineNameOf(prefix: string, workflow: WorkflowKind): string {
  return `${prefix}-${workflow}`;
}
