import { runWorkflow, type LocalPorts } from '../adapters/local/local-workflows.ts';
import { LockedError } from '../core/errors.ts';
import type { RunError, RunKind, RunRecord, RunStatus } from '../ports.ts';
import type { RunInput } from '../steps/state.ts';
import type { RunProgress } from './backend.ts';
import { redactText } from './redact.ts';

interface Entry {
  readonly runId: string;
  readonly database: string;
  readonly kind: RunKind;
  readonly states: { state: string; enteredAt: string }[];
  status: RunStatus;
  error?: RunError;
  done: boolean;
  readonly listeners: Set<(p: RunProgress) => void>;
  promise?: Promise<void>;
}

/** Finished runs kept in memory for the page to read their live timeline; older ones are in the ledger. */
const KEEP_FINISHED = 50;
const LEDGER_POLL_MS = 1_000;

/**
 * The runs this process started, followed live from the state machine's `onState` (the ledger only
 * gets a run's timeline when it ends), and, for runs started elsewhere, a poll of the ledger.
 *
 * @example
 * ```ts
 * const tracker = new RunTracker();
 * tracker.reserve(runId, 'shop', 'restore');              // LOCKED if this process is already running one on shop
 * tracker.run(runId, ports, { kind: 'restore', database: 'shop', snapshotId, quiesce: [] });
 * const stop = tracker.follow(runId, (p) => render(p), () => ledger.getRun(runId));
 * ```
 */
export class RunTracker {
  private readonly entries = new Map<string, Entry>();

  /** Claims `database` for a run about to start; LOCKED when this process already runs one on it. */
  reserve(runId: string, database: string, kind: RunKind): void {
    const busy = [...this.entries.values()].find((e) => e.database === database && !e.done);
    if (busy)
      throw new LockedError(`a ${busy.kind} of ${database} started from this console is still running (run ${busy.runId}); wait for it to finish`, {
        owner: busy.runId,
      });
    this.entries.set(runId, { runId, database, kind, states: [], status: 'running', done: false, listeners: new Set() });
  }

  /** Forgets a reservation whose run never started. */
  release(runId: string): void {
    this.entries.delete(runId);
  }

  /** Whether any run this process started is still going. */
  anyRunning(): boolean {
    return [...this.entries.values()].some((e) => !e.done);
  }

  isBusy(database: string): boolean {
    return [...this.entries.values()].some((e) => e.database === database && !e.done);
  }

  progress(runId: string): RunProgress | undefined {
    const entry = this.entries.get(runId);
    return entry && snapshot(entry);
  }

  /** Runs of `database` this process is running. */
  pending(database: string): RunProgress[] {
    return [...this.entries.values()].filter((e) => e.database === database && !e.done).map(snapshot);
  }

  /**
   * Runs the workflow of a reserved run in the background; closes `ports` when it ends. Errors end up
   * in the run's progress (and the ledger), never as an unhandled rejection.
   */
  run(
    runId: string,
    ports: LocalPorts,
    input: Omit<RunInput, 'runId'>,
    opts: { readonly secrets?: readonly string[]; readonly onDone?: () => void } = {},
  ): void {
    const entry = this.entries.get(runId);
    if (!entry) throw new Error(`run ${runId} was not reserved`);
    entry.promise = (async () => {
      try {
        const report = await runWorkflow(
          ports,
          { ...input, runId },
          {
            onState: (state) => {
              entry.states.push({ state, enteredAt: new Date().toISOString() });
              this.emit(entry);
            },
          },
        );
        entry.status = report.run.status;
        if (report.run.error) entry.error = report.run.error;
      } catch (error) {
        // runWorkflow records failures in the ledger itself; reaching here means even that failed.
        entry.status = 'needs-operator';
        const message = (error as { message?: unknown } | null | undefined)?.message ?? error;
        entry.error = { code: (error as { code?: string }).code ?? 'INTERNAL', message: redactText(String(message), opts.secrets) };
      } finally {
        await ports.close().catch(() => undefined);
        opts.onDone?.();
        entry.done = true;
        this.emit(entry);
        entry.listeners.clear();
        this.trim();
      }
    })();
  }

  /**
   * Calls `listener` with the run's progress now and at each change until it is done. A run this
   * process did not start is followed by polling the ledger.
   */
  follow(runId: string, listener: (p: RunProgress) => void, fetchRecord: () => Promise<RunRecord | undefined>): () => void {
    const entry = this.entries.get(runId);
    if (entry) {
      listener(snapshot(entry));
      if (entry.done) return () => undefined;
      entry.listeners.add(listener);
      return () => entry.listeners.delete(listener);
    }
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const poll = async (): Promise<void> => {
      const record = await fetchRecord().catch(() => undefined);
      if (stopped) return;
      if (record) {
        const done = record.status !== 'running';
        listener({
          runId,
          database: record.database,
          kind: record.kind,
          status: record.status,
          done,
          states: (record.timeline ?? []).map((t) => ({ state: t.state, enteredAt: t.enteredAt })),
          ...(record.error ? { error: record.error } : {}),
        });
        if (done) return;
      }
      timer = setTimeout(() => void poll(), LEDGER_POLL_MS);
    };
    void poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }

  /** Waits for every run this process started to end (a restore is never cut off half-way by closing). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.entries.values()].flatMap((e) => (e.promise ? [e.promise] : [])));
  }

  private emit(entry: Entry): void {
    const progress = snapshot(entry);
    for (const listener of entry.listeners) {
      try {
        listener(progress);
      } catch {
        // A listener that fails (a closed connection) must not stop the run or the others.
      }
    }
  }

  private trim(): void {
    const finished = [...this.entries.values()].filter((e) => e.done);
    for (const e of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) this.entries.delete(e.runId);
  }
}

function snapshot(e: Entry): RunProgress {
  return {
    runId: e.runId,
    database: e.database,
    kind: e.kind,
    states: e.states.map((s) => ({ ...s })),
    done: e.done,
    status: e.status,
    ...(e.error ? { error: e.error } : {}),
  };
}
