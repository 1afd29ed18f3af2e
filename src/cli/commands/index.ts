import type { Command } from '../command.ts';
import { baselineCommand } from './baseline.ts';
import { consoleCommand } from './console.ts';
import { compatCommand } from './compat.ts';
import { demoCommand } from './demo.ts';
import { embeddedCommand } from './embedded.ts';
import { infoCommand } from './info.ts';
import { lintCommand } from './lint.ts';
import { migrateCommand } from './migrate.ts';
import { repairCommand } from './repair.ts';
import { validateCommand } from './validate.ts';
import { upgradeCommand } from './upgrade.ts';
import { restoreCommand } from './restore.ts';
import { rehearseCommand } from './rehearse.ts';
import { runsCommand } from './runs.ts';
import { snapshotsCommand } from './snapshots.ts';
import { quiescedCommand } from './quiesced.ts';
import { unlockCommand } from './unlock.ts';
import { recoverCommand } from './recover.ts';

/** Every verb of the `safeshift` command, in the order `--help` lists them. */
export const COMMANDS: readonly Command[] = [
  migrateCommand,
  infoCommand,
  validateCommand,
  lintCommand,
  compatCommand,
  baselineCommand,
  repairCommand,
  upgradeCommand,
  restoreCommand,
  rehearseCommand,
  runsCommand,
  snapshotsCommand,
  quiescedCommand,
  recoverCommand,
  unlockCommand,
  consoleCommand,
  demoCommand,
  embeddedCommand,
];
