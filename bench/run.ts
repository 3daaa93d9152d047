/**
 * `npm run bench`: measures the pipeline on the local stack and writes `bench/results.json` plus a table
 * (`npm run bench -- <part>` runs one part and writes `.local/bench/results-<part>.json` instead).
 * Every ratio compares figures measured in this same run on this same machine.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchInitialSync } from './initial-sync.js';
import { benchJsonParse } from './json-parse.js';
import { benchSink } from './sink.js';
import { benchWebhooks } from './webhooks.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..');

export interface BenchFigure {
  key: string;
  label: string;
  value: number;
  unit: string;
  target?: string;
  met?: boolean;
}

const only = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const want = (name: string) => !only.length || only.includes(name);

const figures: BenchFigure[] = [];
const started = Date.now();
if (want('sink')) figures.push(...(await benchSink(root)));
if (want('webhooks')) figures.push(...(await benchWebhooks(root)));
if (want('json')) figures.push(...(await benchJsonParse()));
if (want('initial-sync')) figures.push(...(await benchInitialSync(root, figures)));

const byKey = Object.fromEntries(figures.map((f) => [f.key, f.value]));
const results = {
  measuredOn: new Date().toISOString(),
  machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
  durationSeconds: Math.round((Date.now() - started) / 1000),
  ...byKey,
  figures,
};
// Only a full run replaces bench/results.json (its figures must come from one run); a part goes to .local/.
const partial = only.length > 0;
const written = partial
  ? join(root, '.local', 'bench', `results-${only.join('-')}.json`)
  : join(root, 'bench', 'results.json');
mkdirSync(dirname(written), { recursive: true });
writeFileSync(written, `${JSON.stringify({ ...results, ...(partial ? { parts: only } : {}) }, null, 2)}\n`);

const rows = figures.map((f) => [
  f.label,
  `${f.value.toLocaleString('en-US', { maximumFractionDigits: f.value < 10 ? 2 : 0 })} ${f.unit}`,
  f.target ?? '',
  f.met === undefined ? '' : f.met ? 'met' : 'MISSED',
]);
const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length), 6));
console.log(`\n${['figure', 'value', 'target', ''].map((h, i) => h.padEnd(widths[i])).join('  ')}`);
for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  '));
console.log(`\nwritten to ${relative(root, written)} (${results.durationSeconds} s)`);
process.exit(0);
