import { readFileSync } from 'node:fs';

const started = new Date();
const version: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();

export function healthReport(): { status: 'ok'; version: string; startedOn: string; uptimeSeconds: number } {
  return {
    status: 'ok',
    version,
    startedOn: started.toISOString(),
    uptimeSeconds: Math.round((Date.now() - started.getTime()) / 1000),
  };
}
