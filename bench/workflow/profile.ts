import type { LocalPorts } from '../../src/adapters/local/local-workflows.ts';
import type { StepInvoker } from '../../src/adapters/local/local-runner.ts';
import type { TimelineEntry } from '../../src/ports.ts';
import { runStep } from '../../src/steps/registry.ts';
import { tapPg } from './pg-tap.ts';

/** Time and count of one kind of call. */
export interface Tally {
  ms: number;
  calls: number;
}

/** Where one state's time went, as seen from the benchmark's side of the ports. */
export interface StateProfile {
  /** Time inside the step function (the rest of the state's time is the state machine runtime's). */
  step: Tally;
  /** By port (`ledger`, `fleet`, `sessions` for SQL through the Connector, `quiescer`, `connector`). */
  readonly ports: Map<string, Tally>;
  /** Every `pg` connect and query made meanwhile, whoever made it (ports, their pools, the engine). */
  readonly connects: Tally;
  readonly queries: Tally;
}

/** The categories a port call is counted under. */
const PORT_LABEL = { ledger: 'ledger', fleet: 'fleet', connector: 'connector', session: 'sessions', quiescer: 'quiescer' } as const;

/**
 * Measures a local workflow run from outside: each Task's step is timed through the runner's public
 * `invoke` hook, the ports are wrapped in timing proxies, and `pg.Client`'s connect and query are
 * counted while `install()` is in effect. All of it costs microseconds per call; nothing is changed
 * but the clock readings. Steps run one at a time, so a call belongs to the state whose step is running.
 *
 * @example
 * ```ts
 * const profiler = new WorkflowProfiler();
 * profiler.install();
 * try { await runWorkflow(profiler.wrap(ports), input, { invoke: profiler.invoker() }); } finally { profiler.uninstall(); }
 * ```
 */
export class WorkflowProfiler {
  readonly states = new Map<string, StateProfile>();
  private current: string | undefined;
  private restore: (() => void) | undefined;

  /** Starts counting every `pg.Client` connect and query in this process. */
  install(): void {
    if (this.restore) return;
    // Counted for the state whose step is running when the call settles: steps await their calls.
    const count = (pick: (p: StateProfile) => Tally) => (ms: number) => {
      if (this.current) this.add(this.current, pick, ms);
    };
    this.restore = tapPg({ connect: count((p) => p.connects), query: (_text, ms) => count((p) => p.queries)(ms) });
  }

  uninstall(): void {
    this.restore?.();
    this.restore = undefined;
  }

  /** Clears what was measured, for the next run. */
  reset(): void {
    this.states.clear();
    this.current = undefined;
  }

  /** The same ports, every call timed. */
  wrap(ports: LocalPorts): LocalPorts {
    const { ctx } = ports;
    const connector = this.timed(ctx.connector, PORT_LABEL.connector, (method, value) =>
      method === 'connect' ? this.timed(value as object, PORT_LABEL.session) : value,
    );
    const quiescers = { create: (spec: string, database: string) => this.timed(ctx.quiescers.create(spec, database), PORT_LABEL.quiescer) };
    return {
      ctx: { ...ctx, ledger: this.timed(ctx.ledger, PORT_LABEL.ledger), fleet: this.timed(ctx.fleet, PORT_LABEL.fleet), connector, quiescers },
      close: () => ports.close(),
    };
  }

  /** The runner's step call, timed, with the state it runs for made current. */
  invoker(): StepInvoker {
    return async (step, input, stateName, ctx) => {
      this.current = stateName;
      const began = performance.now();
      try {
        return await runStep(step, input, ctx);
      } finally {
        this.add(stateName, (p) => p.step, performance.now() - began);
        this.current = undefined;
      }
    };
  }

  private profile(state: string): StateProfile {
    let p = this.states.get(state);
    if (!p) {
      p = { step: { ms: 0, calls: 0 }, ports: new Map(), connects: { ms: 0, calls: 0 }, queries: { ms: 0, calls: 0 } };
      this.states.set(state, p);
    }
    return p;
  }

  private add(state: string, pick: (p: StateProfile) => Tally, ms: number): void {
    const t = pick(this.profile(state));
    t.ms += ms;
    t.calls += 1;
  }

  /** A proxy timing every async method of `target` under `label`; `map` may wrap what a method returns. */
  private timed<T extends object>(target: T, label: string, map?: (method: string, value: unknown) => unknown): T {
    return new Proxy(target, {
      get: (obj, key, receiver) => {
        const value = Reflect.get(obj, key, receiver) as unknown;
        if (typeof value !== 'function' || typeof key !== 'string') return value;
        return (...args: unknown[]) => {
          const state = this.current;
          const began = performance.now();
          const settle = (ms: number) => {
            if (state) this.add(state, (p) => portTally(p, label), ms);
          };
          const result = (value as (...a: unknown[]) => unknown).apply(obj, args);
          if (result && typeof (result as Promise<unknown>).then === 'function') {
            return (result as Promise<unknown>).then(
              (v) => {
                settle(performance.now() - began);
                return map ? map(key, v) : v;
              },
              (e: unknown) => {
                settle(performance.now() - began);
                throw e;
              },
            );
          }
          return map ? map(key, result) : result;
        };
      },
    });
  }
}

function portTally(p: StateProfile, label: string): Tally {
  let t = p.ports.get(label);
  if (!t) {
    t = { ms: 0, calls: 0 };
    p.ports.set(label, t);
  }
  return t;
}

/** ms from an ISO time to another. */
export function between(from: string | undefined, to: string | undefined): number {
  return from && to ? Date.parse(to) - Date.parse(from) : Number.NaN;
}

/** The first timeline entry of a state. */
export function entry(timeline: readonly TimelineEntry[], state: string): TimelineEntry | undefined {
  return timeline.find((t) => t.state === state);
}

/** A state's duration (entered to exited), NaN when it did not run. */
export function stateMs(timeline: readonly TimelineEntry[], state: string): number {
  // A state entered more than once (the migrate loop: one migration per invocation) counts every time.
  return timeline.filter((e) => e.state === state).reduce((total, e) => total + between(e.enteredAt, e.exitedAt), 0);
}
