import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', '..');

export interface StackJson {
  apiBaseUrl: string;
  consoleUrl: string;
  functionKey: string;
  masterKey: string;
  postgresUrl: string;
  storageConnectionString: string;
  serviceBusConnectionString: string;
  sampleOrg: { url: string; organizationId: string; counts: Record<string, number> };
  pid: number;
}

export interface StackProcess extends AsyncDisposable {
  child: ChildProcess;
  dataDir: string;
  info: StackJson;
  /** Milliseconds from spawn until /api/health answered. */
  readyMs: number;
  output(): string;
  /** Sends SIGINT and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `npm start`'s entry point (`dist/dev/main.js`) as a user would, on its own data directory. */
export async function startStackProcess(
  options: { dataDir?: string; fresh?: boolean; env?: Record<string, string>; args?: string[] } = {},
): Promise<StackProcess> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'dvx-e2e-'));
  const ownsDir = !options.dataDir;
  const started = Date.now();
  const args = [join(root, 'dist', 'dev', 'main.js'), `--data-dir=${dataDir}`];
  if (options.fresh ?? true) args.push('--fresh');
  args.push(...(options.args ?? []));
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, PORT: '0', LogLevel: 'warn', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const stop = async (signal: NodeJS.Signals = 'SIGINT') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const code = await Promise.race([exited, delay(30_000).then(() => 'timeout' as const)]);
    if (code === 'timeout') {
      child.kill('SIGKILL');
      return exited;
    }
    return code;
  };

  const stackFile = join(dataDir, 'stack.json');
  const deadline = Date.now() + 90_000;
  let info: StackJson | undefined;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if (existsSync(stackFile)) {
      const candidate = JSON.parse(readFileSync(stackFile, 'utf8')) as StackJson;
      if (candidate.pid === child.pid) {
        const ok = await fetch(`${candidate.apiBaseUrl}/health`)
          .then((r) => r.ok)
          .catch(() => false);
        if (ok) {
          info = candidate;
          break;
        }
      }
    }
    await delay(100);
  }
  if (!info) {
    await stop('SIGKILL');
    throw new Error(`the stack did not become healthy within 90 s; its output:\n${output}`);
  }
  const readyMs = Date.now() - started;
  return {
    child,
    dataDir,
    info,
    readyMs,
    output: () => output,
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
      if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await delay(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
