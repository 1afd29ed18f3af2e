/** Whether the API takes writes. */
export type ApiMode = 'normal' | 'maintenance';

/** How a switch to maintenance ended. */
export type DrainResult = 'drained' | 'timed-out' | 'resumed';

/**
 * The door every write goes through: it counts the writes in flight and, in maintenance, turns new
 * ones away. Entering checks the mode and counts in the same synchronous step, so once
 * `enterMaintenance` has set the mode, no write can slip in behind the count it is waiting on.
 *
 * @example
 * ```ts
 * const gate = new WriteGate();
 * if (!gate.tryEnter()) return refuse();
 * try { await insert(); } finally { gate.leave(); }
 * // elsewhere: await gate.enterMaintenance(30_000) === 'drained' → nothing is writing any more
 * ```
 */
export class WriteGate {
  #mode: ApiMode;
  #inFlight = 0;
  #waiters = new Set<() => void>();

  /** @param mode the mode to start in: an API restarted mid-upgrade starts in `maintenance`. */
  constructor(mode: ApiMode = 'normal') {
    this.#mode = mode;
  }

  get mode(): ApiMode {
    return this.#mode;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Counts a write in, or says no (maintenance). A `true` must be paired with one `leave()`. */
  tryEnter(): boolean {
    if (this.#mode !== 'normal') return false;
    this.#inFlight += 1;
    return true;
  }

  leave(): void {
    this.#inFlight -= 1;
    if (this.#inFlight === 0) this.#wake();
  }

  /** Refuses new writes from now on; the writes already admitted carry on (see `drain`). */
  refuse(): void {
    this.#mode = 'maintenance';
  }

  /**
   * Refuses new writes from now on and waits until every write already admitted has finished.
   * `'resumed'` if someone switched back to normal meanwhile: the caller must not claim quiet.
   */
  async enterMaintenance(timeoutMs: number): Promise<DrainResult> {
    this.refuse();
    return this.drain(timeoutMs);
  }

  /**
   * After `refuse()`: waits until every write admitted before it has finished. Split from `refuse`
   * so a caller can record the mode between the two without letting a write in meanwhile.
   */
  async drain(timeoutMs: number): Promise<DrainResult> {
    if (this.#inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      let wake: () => void = () => {};
      const timedOut = await new Promise<boolean>((resolve) => {
        wake = () => resolve(false);
        this.#waiters.add(wake);
        timer = setTimeout(() => resolve(true), timeoutMs);
      });
      clearTimeout(timer);
      this.#waiters.delete(wake);
      if (this.#mode !== 'maintenance') return 'resumed';
      if (timedOut) return 'timed-out';
    }
    return this.#mode === 'maintenance' ? 'drained' : 'resumed';
  }

  /** Takes writes again; a drain still waiting answers `'resumed'`. */
  resume(): void {
    this.#mode = 'normal';
    this.#wake();
  }

  /** Resolves once no write is in flight (used when shutting down). */
  async idle(): Promise<void> {
    while (this.#inFlight > 0) await new Promise<void>((resolve) => this.#waiters.add(resolve));
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }
}
