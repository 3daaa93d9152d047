/**
 * The worker's heap check, in real Node processes: started with the arguments bicep/main.bicep deploys it
 * reports the cap as applied; started without them (as a host that dropped them would) it warns.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { deployedWorker } from '../../bench/deployed-worker.js';
import { reportWorkerHeap, type WorkerHeap, workerHeap } from '../../lib/worker-heap.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const moduleUrl = pathToFileURL(join(root, 'dist', 'lib', 'worker-heap.js')).href;

/** workerHeap(process.env) in a fresh Node process started with `args` and `env`. */
function heapOf(args: string[], env: Record<string, string>): WorkerHeap {
  const script = `import { workerHeap } from ${JSON.stringify(moduleUrl)}; console.log(JSON.stringify(workerHeap(process.env)));`;
  const { NODE_OPTIONS: _ignored, ...inherited } = process.env;
  const out = execFileSync(process.execPath, [...args, '--input-type=module', '-e', script], {
    env: { ...inherited, ...env },
    encoding: 'utf8',
  });
  return JSON.parse(out) as WorkerHeap;
}

function logged(heap: WorkerHeap): Array<{ level: string; message: string; fields?: object }> {
  const lines: Array<{ level: string; message: string; fields?: object }> = [];
  reportWorkerHeap(
    {
      info: (message, fields) => lines.push({ level: 'info', message, fields }),
      warn: (message, fields) => lines.push({ level: 'warn', message, fields }),
    },
    heap,
  );
  return lines;
}

describe('worker heap check', () => {
  const deployed = deployedWorker(root);
  const setting = deployed.args.join(' ');
  const requested = Number(/--max-old-space-size=(\d+)/.exec(setting)?.[1]);

  it('reports the deployed cap as applied when the worker was started with its arguments', () => {
    const heap = heapOf(deployed.args, { languageWorkers__node__arguments: setting });
    assert.equal(heap.requestedOldSpaceMb, requested);
    assert.equal(heap.applied, true);
    assert.ok(heap.heapLimitMb >= requested && heap.heapLimitMb <= requested + 64, `limit ${heap.heapLimitMb} MB`);
    const [line] = logged(heap);
    assert.equal(line.level, 'info');
  });

  it('warns, naming the setting and what to do, when the worker runs without them', () => {
    const heap = heapOf(['--max-old-space-size=2048'], { languageWorkers__node__arguments: setting });
    assert.equal(heap.applied, false);
    assert.ok(heap.heapLimitMb > 2048);
    const [line] = logged(heap);
    assert.equal(line.level, 'warn');
    assert.match(line.message, new RegExp(`asks for --max-old-space-size=${requested}`));
    assert.match(line.message, new RegExp(`NODE_OPTIONS=--max-old-space-size=${requested}`));
    assert.match(line.message, /Restart the function app/);
  });

  it('counts NODE_OPTIONS as applying the cap, as Node itself does', () => {
    const heap = heapOf([], {
      languageWorkers__node__arguments: setting,
      NODE_OPTIONS: `--max-old-space-size=${requested}`,
    });
    assert.equal(heap.applied, true);
  });

  it('reads the flag in either spelling and either separator of the setting name', () => {
    const mb = 1024 * 1024;
    assert.deepEqual(workerHeap({ 'languageWorkers:node:arguments': '--inspect --max_old_space_size=300' }, 340 * mb), {
      heapLimitMb: 340,
      requestedOldSpaceMb: 300,
      applied: true,
    });
    assert.equal(
      workerHeap({ languageWorkers__node__arguments: '--max-old-space-size=300' }, 4096 * mb).applied,
      false,
    );
  });

  it('has nothing to compare when no cap is asked for', () => {
    const heap = workerHeap({ languageWorkers__node__arguments: '--enable-source-maps' }, 4096 * 1024 * 1024);
    assert.deepEqual(heap, { heapLimitMb: 4096 });
    assert.equal(logged(heap)[0].level, 'info');
    assert.deepEqual(workerHeap({}, 1024 * 1024 * 1024), { heapLimitMb: 1024 });
  });
});
