/**
 * The Node worker's arguments as bicep/main.bicep deploys them (`languageWorkers__node__arguments`) for its
 * default instance size: the bench's sync processes run with them, so their memory is the deployed worker's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DeployedWorker {
  instanceMemoryMB: number;
  args: string[];
}

export function deployedWorker(root: string): DeployedWorker {
  const bicep = readFileSync(join(root, 'bicep', 'main.bicep'), 'utf8');
  const memory = /^param instanceMemoryMB int = (\d+)$/m.exec(bicep);
  const setting = /^\s*languageWorkers__node__arguments: '([^']*)'$/m.exec(bicep);
  if (!memory || !setting) {
    throw new Error('bicep/main.bicep no longer declares instanceMemoryMB with a default and the worker arguments');
  }
  const instanceMemoryMB = Number(memory[1]);
  // The one interpolation the setting holds: a share of the instance's memory (Bicep's integer division).
  const text = setting[1].replace(/\$\{instanceMemoryMB \/ (\d+)\}/g, (_, d: string) =>
    String(Math.floor(instanceMemoryMB / Number(d))),
  );
  if (text.includes('${')) throw new Error(`the bench cannot evaluate the worker arguments ${setting[1]}`);
  return { instanceMemoryMB, args: text.split(' ').filter(Boolean) };
}
