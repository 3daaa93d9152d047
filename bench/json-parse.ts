/**
 * The two lossless JSON readers against one `JSON.parse` with a reviver that reads each number's source text
 * (Node 22's V8 hands it over as the reviver's third argument). Inputs are what the product really parses:
 * 5,000-row Web API pages from the sample organization, and webhook bodies as the load generator sends them.
 * Each candidate must produce the same value as the reader it would replace before it is timed.
 */
import { deepStrictEqual } from 'node:assert';
import { performance } from 'node:perf_hooks';
import { buildRemoteExecutionContext, serializeRemoteExecutionContext } from '../dev/dataverse-payloads.js';
import { startSampleOrg } from '../dev/sample-org/index.js';
import { parseJsonLossless } from '../lib/dataverse/webapi/json.js';
import { INCLUDE_ANNOTATIONS } from '../lib/dataverse/webapi/rows.js';
import { parseLosslessJson } from '../lib/dataverse/webhook/lossless-json.js';
import { benchRecordId } from './ids.js';
import type { BenchFigure } from './run.js';

interface SourceContext {
  source: string;
}
type Reviver = (key: string, value: unknown, context: SourceContext) => unknown;

/** Significant digits of a number literal (mantissa digits after leading zeros). */
function significantDigits(literal: string): number {
  const mantissa = literal.replace(/^-/, '').split(/[eE]/)[0].replace('.', '');
  return mantissa.replace(/^0+/, '').length;
}

/** The Web API reader's contract: a literal of more than 15 significant digits arrives as its text. */
const webApiReviver: Reviver = (_key, value, context) =>
  typeof value === 'number' && context.source.length > 15 && significantDigits(context.source) > 15
    ? context.source
    : value;

/** The webhook reader's contract: every literal with a fraction, an exponent or 16+ digits keeps its text. */
const TAG = '\ufdd0';
const webhookReviver: Reviver = (_key, value, context) => {
  if (typeof value !== 'number') return value;
  const s = context.source;
  return s.length > 15 || s.includes('.') || s.includes('e') || s.includes('E') ? TAG + s : value;
};

/** Median milliseconds of `runs` passes over all inputs. */
function time(inputs: readonly string[], parse: (text: string) => unknown, runs: number): number {
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const start = performance.now();
    for (const text of inputs) parse(text);
    samples.push(performance.now() - start);
  }
  return samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)];
}

async function webApiPages(): Promise<string[]> {
  await using org = await startSampleOrg({ counts: { account: 10_000, contact: 10_000 } });
  const pages: string[] = [];
  for (const set of ['accounts', 'contacts']) {
    let next: string | undefined = `${org.url}/api/data/v9.2/${set}`;
    while (next) {
      const res = await fetch(next, { headers: { prefer: `odata.maxpagesize=5000,${INCLUDE_ANNOTATIONS}` } });
      const text = await res.text();
      pages.push(text);
      next = (JSON.parse(text) as { '@odata.nextLink'?: string })['@odata.nextLink'];
    }
  }
  return pages;
}

function webhookBodies(count: number): string[] {
  return Array.from({ length: count }, (_, i) =>
    serializeRemoteExecutionContext(
      buildRemoteExecutionContext({
        organizationId: '6f2d5c1e-8a4b-4c3d-9e2f-1a2b3c4d5e6f',
        messageName: 'Update',
        entity: 'account',
        id: benchRecordId(i),
        versionNumber: String(5_000_000 + i),
        attributes: {
          name: { type: 'string', value: `Bench ${i}` },
          revenue: { type: 'money', value: `${i}.25` },
          new_senttime: { type: 'datetime', value: new Date(1_700_000_000_000 + i).toISOString() },
        },
      }),
    ),
  );
}

export async function benchJsonParse(): Promise<BenchFigure[]> {
  const supported = Number(process.versions.node.split('.')[0]) >= 22;
  if (!supported) throw new Error('the reviver source text needs Node 22 or newer');
  const pages = await webApiPages();
  const bodies = webhookBodies(2_000);
  const parseWithReviver = (reviver: Reviver) => (text: string) => JSON.parse(text, reviver as never);

  for (const page of pages.slice(0, 2)) deepStrictEqual(parseWithReviver(webApiReviver)(page), parseJsonLossless(page));
  for (const body of bodies.slice(0, 50)) {
    deepStrictEqual(parseWithReviver(webhookReviver)(body), relabel(parseLosslessJson(body)));
  }

  const runs = 15;
  const pageMb = pages.reduce((n, p) => n + p.length, 0) / 1e6;
  const webApiHand = time(pages, parseJsonLossless, runs);
  const webApiRevived = time(pages, parseWithReviver(webApiReviver), runs);
  const webhookHand = time(bodies, parseLosslessJson, runs);
  const webhookRevived = time(bodies, parseWithReviver(webhookReviver), runs);
  console.log(
    `[bench] JSON: ${pages.length} Web API pages (${pageMb.toFixed(1)} MB): hand-written ${webApiHand.toFixed(1)} ms, ` +
      `reviver ${webApiRevived.toFixed(1)} ms; ${bodies.length} webhook bodies: hand-written ` +
      `${webhookHand.toFixed(1)} ms, reviver ${webhookRevived.toFixed(1)} ms`,
  );
  return [
    { key: 'jsonWebApiHandMs', label: 'Web API pages, hand-written lossless parse', value: webApiHand, unit: 'ms' },
    {
      key: 'jsonWebApiReviverMs',
      label: 'Web API pages, JSON.parse + source reviver',
      value: webApiRevived,
      unit: 'ms',
    },
    { key: 'jsonWebhookHandMs', label: 'webhook bodies, hand-written lossless parse', value: webhookHand, unit: 'ms' },
    {
      key: 'jsonWebhookReviverMs',
      label: 'webhook bodies, JSON.parse + source reviver',
      value: webhookRevived,
      unit: 'ms',
    },
  ];
}

/** The webhook reader's value with its own tag replaced by the reviver's, so the two compare equal. */
function relabel(parsed: ReturnType<typeof parseLosslessJson>): unknown {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    const text = typeof v === 'string' ? parsed.numberText(v) : undefined;
    return text !== undefined ? TAG + text : v;
  };
  return walk(parsed.value);
}
