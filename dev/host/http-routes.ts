/**
 * Route templates as the Functions host reads them: `profiles/{id}`, optional `{id?}`, constrained
 * `{id:int}` / `{id:guid}`, catch-all `{*path}`. Literal segments match case-insensitively.
 */
import type { FunctionRegistration } from './registry.js';

export interface CompiledRoute {
  fn: FunctionRegistration;
  template: string;
  methods: string[] | undefined;
  authLevel: string;
  match(path: string): Record<string, string> | undefined;
  /** Lower sorts first: literal segments beat parameters, parameters beat catch-alls. */
  precedence: number[];
}

const constraints: Record<string, RegExp> = {
  int: /^-?\d+$/,
  long: /^-?\d+$/,
  guid: /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i,
  bool: /^(true|false)$/i,
  alpha: /^[a-z]+$/i,
};

interface Segment {
  literal?: string;
  param?: string;
  optional?: boolean;
  catchAll?: boolean;
  constraint?: RegExp;
}

export function compileRoute(fn: FunctionRegistration): CompiledRoute {
  const template = String(fn.trigger.route ?? fn.name).replace(/^\/+|\/+$/g, '');
  const segments = template === '' ? [] : template.split('/').map(parseSegment);
  return {
    fn,
    template,
    methods: fn.trigger.methods?.map((m) => m.toUpperCase()),
    authLevel: String(fn.trigger.authLevel ?? 'function').toLowerCase(),
    precedence: segments.map((s) => (s.literal !== undefined ? 0 : s.catchAll ? 3 : s.optional ? 2 : 1)),
    match: (path) => matchSegments(segments, path === '' ? [] : path.split('/')),
  };
}

function parseSegment(raw: string): Segment {
  const m = /^\{(\*)?([A-Za-z_][\w]*)(?::([A-Za-z]+)(?:\([^)]*\))?)?(\?)?\}$/.exec(raw);
  if (!m) return { literal: raw.toLowerCase() };
  return {
    param: m[2],
    catchAll: Boolean(m[1]),
    constraint: m[3] ? constraints[m[3].toLowerCase()] : undefined,
    optional: Boolean(m[4]),
  };
}

function matchSegments(segments: Segment[], parts: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    const part = parts[i];
    if (seg.catchAll) {
      const rest = parts.slice(i).map(safeDecode).join('/');
      if (rest !== '') params[seg.param!] = rest;
      return params;
    }
    if (part === undefined || part === '') {
      if (seg.optional && segments.slice(i + 1).every((s) => s.optional || s.catchAll)) return params;
      return undefined;
    }
    if (seg.literal !== undefined) {
      if (safeDecode(part).toLowerCase() !== seg.literal) return undefined;
      continue;
    }
    const value = safeDecode(part);
    if (seg.constraint && !seg.constraint.test(value)) return undefined;
    params[seg.param!] = value;
  }
  return parts.length === segments.length ? params : undefined;
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

export function byPrecedence(a: CompiledRoute, b: CompiledRoute): number {
  const n = Math.max(a.precedence.length, b.precedence.length);
  for (let i = 0; i < n; i++) {
    const d = (a.precedence[i] ?? -1) - (b.precedence[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}
