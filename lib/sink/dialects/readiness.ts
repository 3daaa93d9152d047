/** What a target check found: what blocks activation (each with the statement that fixes it), what merely warns. */
export interface Readiness {
  problems: Array<{ field: string; message: string; fix: string }>;
  warnings: string[];
}
