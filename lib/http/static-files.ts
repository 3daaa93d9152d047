/**
 * Serves a folder of built static files (the console) from an HTTP trigger: known types only, no path
 * outside the folder, `index.html` for the folder itself. Hashed assets are cached for a year; the page is not.
 */
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';

export interface StaticResult {
  status: number;
  headers: Record<string, string>;
  body?: Uint8Array | string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** Everything the page may load comes from the app itself: no CDN, no inline script. */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export async function serveStatic(root: string, requestPath: string | undefined): Promise<StaticResult> {
  const relative = (requestPath ?? '').replace(/^\/+/, '') || 'index.html';
  const full = normalize(join(root, relative));
  const notFound = { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'Not found' };
  if (!full.startsWith(normalize(root) + sep) || relative.split('/').includes('..')) return notFound;
  const type = TYPES[extname(full).toLowerCase()];
  if (!type) return notFound;
  try {
    if (!(await stat(full)).isFile()) return notFound;
  } catch {
    if (relative === 'index.html') {
      return {
        status: 503,
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        body: 'The console is not built: run `npm run setup` (it runs `vite build`).',
      };
    }
    return notFound;
  }
  const immutable = relative.startsWith('assets/');
  return {
    status: 200,
    headers: {
      'content-type': type,
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      ...SECURITY_HEADERS,
    },
    body: await readFile(full),
  };
}
