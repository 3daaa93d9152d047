/** One step of the control store's schema history; `version`s ascend and are never reused or edited. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The steps not yet recorded, in version order. Throws when the list itself is out of order (a coding error). */
export function pendingMigrations(all: readonly Migration[], applied: Iterable<number>): Migration[] {
  all.forEach((m, i) => {
    if (i > 0 && m.version <= all[i - 1].version) {
      throw new Error(`control store migrations out of order: ${all[i - 1].version} then ${m.version}`);
    }
  });
  const done = new Set(applied);
  return all.filter((m) => !done.has(m.version));
}
