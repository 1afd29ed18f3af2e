/** Where the engine reports progress. The CLI sends it to stderr; libraries may pass their own. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

/** A logger that drops everything, for library calls that want silence. */
export const silentLogger: Logger = { info: () => {}, warn: () => {} };
