import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/test/unit). */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SKIP = new Set(['node_modules', 'dist', '.local', '.git', 'package-lock.json']);
const TEXT = /\.(ts|mjs|js|json|md|bicep|yaml|yml)$/;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    if (SKIP.has(entry)) return [];
    const full = join(dir, entry);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return TEXT.test(entry) ? [full] : [];
  });
}

/** Every line of every source file, with where it is. */
function lines(): { file: string; line: number; text: string }[] {
  return sourceFiles(root).flatMap((full) =>
    readFileSync(full, 'utf8')
      .split('\n')
      .map((text, i) => ({ file: relative(root, full), line: i + 1, text })),
  );
}

const architecture = readFileSync(join(root, 'docs', 'architecture.md'), 'utf8');
const sections = new Set([...architecture.matchAll(/^## (\d+)\. /gm)].map((m) => m[1]));
const SELF = join('test', 'unit', 'repository-docs.test.ts');

describe('the repository explains itself', () => {
  it('cites no document it does not contain', () => {
    // Written as fragments, so this file does not cite them itself.
    const outside = [['ARCHITECTURE', '§'].join(' '), ['FACTS', 'md'].join('.'), ['..', 'shared'].join('/')];
    const cited: string[] = [];
    for (const { file, line, text } of lines()) {
      if (file === SELF) continue;
      for (const name of outside) if (text.includes(name)) cited.push(`${file}:${line} cites ${name}`);
      // A path to a Markdown file must exist, from the root or from the citing file's folder.
      for (const [, path] of text.matchAll(/(?<![\w@/.-])((?:\.{1,2}\/)?[\w-]+(?:\/[\w.-]+)*\.md)\b/g)) {
        if (!existsSync(join(root, path)) && !existsSync(join(root, dirname(file), path))) {
          cited.push(`${file}:${line} cites ${path}`);
        }
      }
    }
    assert.deepEqual(cited, []);
  });

  it('cites only sections docs/architecture.md has', () => {
    assert.ok(sections.size >= 7, `sections found: ${[...sections]}`);
    const wrong: string[] = [];
    for (const { file, line, text } of lines()) {
      if (file === SELF || file.startsWith('docs')) continue;
      for (const [, n] of text.matchAll(/§(\d+)/g)) {
        if (!text.includes('docs/architecture.md') || !sections.has(n)) wrong.push(`${file}:${line} §${n}`);
      }
    }
    assert.deepEqual(wrong, []);
  });
});
