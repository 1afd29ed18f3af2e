import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { openLocalPorts, type LocalPorts } from '../../src/adapters/local/local-workflows.ts';
import { recoverRun, type RecoverReport } from '../../src/adapters/local/recover-run.ts';
import type { RunRecord, RunStatus } from '../../src/ports.ts';
import { runLiveness } from '../../src/steps/run-liveness.ts';
import type { RunInput } from '../../src/steps/state.ts';
import { testServerUrl } from './database.ts';
import { defined } from './defined.ts';
import { keptDatabases, leftovers, productionState, roleState, type CaseDatabase, type ShopTemplate } from './shop.ts';
import type { ShopLane } from './case-pool.ts';

/** Where and how the child run is interrupted. */
export interface InterruptAt {
  readonly state: string;
  /** Which entry of a looping state, 1-based. @default 1 */
  readonly entry?: number;
  /** Before the step begins (after its checkpoint), after it returned (its result lost), or while it runs. */
  readonly moment: 'before' | 'after' | 'during';
  /** For `during`: how long after the step began. @default 100 */
  readonly afterMs?: number;
}

/** What the child process (interrupted-run.ts) is told. */
export interface InterruptConfig {
  readonly serverUrl: string;
  readonly migrationsDir: string;
  readonly input: Omit<RunInput, 'runId'> & { readonly runId: string };
  readonly at?: InterruptAt;
  /** `none`: the child only prints `signal none at <state>` and goes on; the test acts on it. */
  readonly signal: 'SIGKILL' | 'SIGINT' | 'SIGTERM' | 'none';
  /** SIGINT twice: the second leaves the run for `safeshift recover`. */
  readonly twice?: boolean;
}

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(HERE, 'interrupted-run.ts');
let bundled: Promise<string> | undefined;

/**
 * The child script bundled once per test process (esbuild, packages left to node_modules): it
 * starts in a fraction of the time tsx takes, and a matrix starts dozens of them. Inside
 * node_modules, so its imports resolve there.
 */
function childScript(): Promise<string> {
  bundled ??= (async () => {
    const { build } = await import('esbuild');
    const dir = path.resolve(HERE, '../../node_modules/.cache/safeshift-test');
    mkdirSync(dir, { recursive: true });
    const outfile = path.join(dir, `interrupted-run-${process.pid}.mjs`);
    await build({ entryPoints: [CHILD], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile, logLevel: 'warning' });
    return outfile;
  })();
  return bundled;
}

/**
 * Runs a workflow in a child process that is interrupted as `config` says, and waits for it to end.
 * `during` moments give `onRunning` the chance to act meanwhile (stop PostgreSQL, say).
 */
export async function interruptedRun(
  config: Omit<InterruptConfig, 'serverUrl'> & { readonly serverUrl?: string },
  onSignalLine?: (child: { kill(signal: NodeJS.Signals): boolean }) => void,
): Promise<ChildExit> {
  const full: InterruptConfig = { serverUrl: testServerUrl(), ...config };
  const script = await childScript();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, JSON.stringify(full)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATABASE_URL: '' } });
    let stdout = '';
    let stderr = '';
    let told = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!told && onSignalLine && /^signal /m.test(stdout)) {
        told = true;
        onSignalLine(child);
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The ports of a case's database with the migrations the run used. */
export async function withCasePorts<T>(
  database: string,
  migrationsDir: string,
  fn: (ports: LocalPorts) => Promise<T>,
  serverUrl = testServerUrl(),
): Promise<T> {
  const ports = await openLocalPorts({ serverUrl, database, migrationsDir });
  try {
    return await fn(ports);
  } finally {
    await ports.close();
  }
}

/** `safeshift recover` for a database, in-process, retries waiting 20 ms as the child's did. */
export function recover(database: string, migrationsDir: string, serverUrl = testServerUrl()): Promise<RecoverReport> {
  return withCasePorts(database, migrationsDir, (ports) => recoverRun(ports, { database }, { retryIntervalMs: 20 }), serverUrl);
}

/**
 * After an interruption and `recover`: the run ended as `expected`, production is exactly as before
 * or fully upgraded accordingly, the API is back as it was before the first run, every quiesce
 * record resumed, no temporary database left, the lock released; and a second recover changes nothing.
 */
export async function expectRecovered(
  opts: Pick<ShopLane, 'before' | 'after' | 'roleBefore'> & {
    readonly db: CaseDatabase;
    readonly appRole: string;
    readonly migrationsDir: string;
    readonly runId: string;
    readonly expected: RunStatus;
    readonly label: string;
    readonly recovered: RecoverReport;
    /** The server the case runs on. @default the shared test server */
    readonly serverUrl?: string;
  },
): Promise<RunRecord> {
  const { db, label } = opts;
  const serverUrl = opts.serverUrl ?? testServerUrl();
  // Read on one session: the recovery is over, so nothing changes between the reads.
  const { state, kept, role, left } = await db.withClient(async (c) => ({
    state: await productionState(c),
    kept: await keptDatabases(c, db.database),
    role: await roleState(c, opts.appRole, db.database),
    left: await leftovers(c, db.database),
  }));
  const run = await withCasePorts(
    db.database,
    opts.migrationsDir,
    async (ports) => {
      const record = await ports.ctx.ledger.getRun(opts.runId);
      expect(record?.status, `${label}: ${record?.status} ${record?.error?.code ?? ''} ${record?.error?.message ?? ''}\n${opts.recovered.summary}`).toBe(
        opts.expected,
      );
      expect(await ports.ctx.ledger.getLock(db.database), `${label}: lock released`).toBeUndefined();
      const quiesced = await ports.ctx.ledger.listQuiesced({ database: db.database });
      expect(
        quiesced.filter((q) => q.status !== 'resumed'),
        `${label}: every API resumed`,
      ).toEqual([]);
      for (const id of kept) {
        expect((await ports.ctx.ledger.getSnapshot(id))?.keepUntil, `${label}: ${id} recorded as kept`).toBeDefined();
      }
      return defined(record, `${label}: the run record`);
    },
    serverUrl,
  );
  if (opts.expected === 'succeeded') expect(state, `${label}: production fully upgraded`).toEqual(opts.after);
  else expect(state, `${label}: production exactly as before`).toEqual(opts.before);
  expect(role, `${label}: role as before the first run`).toEqual(opts.roleBefore);
  expect(left, `${label}: no temporary database left`).toEqual([]);
  const again = await recover(db.database, opts.migrationsDir, serverUrl);
  expect(again.report, `${label}: a second recover continues nothing`).toBeUndefined();
  expect(again.repairs, `${label}: a second recover repairs nothing`).toEqual([]);
  expect(await db.withClient(productionState), `${label}: unchanged by the second recover`).toEqual(state);
  return run;
}

/**
 * One case of an interruption matrix: a copy of the shop, `prepare` (for what the run needs first),
 * the run in a child interrupted as `at` and `signal` say, `recover`, then {@link expectRecovered}
 * against `before`/`after`. A SIGKILLed run must have died by it and show as interrupted.
 */
export async function interruptAndRecover(o: {
  readonly shop: ShopTemplate;
  readonly migrationsDir: string;
  readonly input: Omit<RunInput, 'runId' | 'database' | 'quiesce'>;
  readonly at: InterruptAt;
  readonly signal: 'SIGKILL' | 'SIGINT';
  readonly twice?: boolean;
  readonly quiesce?: boolean;
  readonly before: Record<string, unknown>;
  readonly after: Record<string, unknown>;
  readonly roleBefore: Record<string, unknown>;
  readonly expected: RunStatus;
  readonly label: string;
  readonly prepare?: (database: string) => Promise<Partial<RunInput>>;
}): Promise<{ exit: ChildExit; recovered: RecoverReport }> {
  const db = await o.shop.copy('intr');
  try {
    const extra = o.prepare ? await o.prepare(db.database) : {};
    const runId = randomUUID();
    const quiesce = o.quiesce === false ? {} : { quiesce: [`db-role:${o.shop.appRole}`] };
    const exit = await interruptedRun({
      migrationsDir: o.migrationsDir,
      signal: o.signal,
      ...(o.twice ? { twice: true } : {}),
      at: o.at,
      input: { ...o.input, ...extra, ...quiesce, database: db.database, runId },
    });
    if (o.signal === 'SIGKILL') {
      expect(exit.signal, `${o.label}: the child was killed\n${exit.stdout}\n${exit.stderr}`).toBe('SIGKILL');
      const dead = await withCasePorts(db.database, o.migrationsDir, (p) => p.ctx.ledger.getRun(runId));
      if (dead?.status === 'running') expect(runLiveness(dead), `${o.label}: shown as interrupted`).toBe('interrupted');
    }
    const recovered = await recover(db.database, o.migrationsDir);
    await expectRecovered({
      db,
      appRole: o.shop.appRole,
      migrationsDir: o.migrationsDir,
      runId,
      before: o.before,
      after: o.after,
      roleBefore: o.roleBefore,
      expected: o.expected,
      label: `${o.label} (${exit.signal ?? exit.code})`,
      recovered,
    });
    return { exit, recovered };
  } finally {
    await db.drop();
  }
}
