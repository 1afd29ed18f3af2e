/** Exit codes of DESIGN.md. */
export const ExitCode = { ok: 0, rolledBack: 1, refused: 2, needsOperator: 3 } as const;
