// The folder boundaries: each folder imports only what it may, and no module reaches itself again through its
// imports (type-only imports included). Imports are read with TypeScript's own scanner (ts.preProcessFile:
// import, import type, export from, import(), require), resolved like the bundler resolves relative paths.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import ts from 'typescript';
import { REPO_ROOT } from '../helpers/record-stack';

const SOURCE = /\.(ts|mjs|cjs)$/;
const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: REPO_ROOT, encoding: 'utf8' })
  .split('\n')
  .filter((file) => SOURCE.test(file) && !file.includes('node_modules/') && fs.existsSync(path.join(REPO_ROOT, file)));

function resolve(from: string, specifier: string): string | undefined {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
  return [base, `${base}.ts`, `${base}/index.ts`, `${base}.mjs`, `${base}.cjs`].find((candidate) =>
    fs.statSync(path.join(REPO_ROOT, candidate), { throwIfNoEntry: false })?.isFile(),
  );
}

/** Each file's project files it imports (relative imports; packages and node: modules are not edges). */
const imports = new Map<string, string[]>(
  files.map((file) => {
    const text = fs.readFileSync(path.join(REPO_ROOT, file), 'utf8');
    const specifiers = ts.preProcessFile(text, true, true).importedFiles.map((ref) => ref.fileName);
    const targets = specifiers.filter((s) => s.startsWith('.')).map((s) => resolve(file, s) ?? `${file} -> unresolved ${s}`);
    return [file, targets];
  }),
);

const topFolder = (file: string) => (file.includes('/') ? file.slice(0, file.indexOf('/')) : file);

/**
 * What each folder may import besides itself. Product code (what goes into an image or the Pulumi program)
 * shares code only through lib/ and, for the two Hono services, replica/; the tools around it import no test
 * file and no Pulumi program internals.
 */
const MAY_IMPORT: Record<string, { allowed?: string[]; forbidden?: string[] }> = {
  lib: { allowed: [] },
  replica: { allowed: ['lib', 'package.json'] },
  service: { allowed: ['replica', 'lib', 'package.json'] },
  activity: { allowed: ['replica', 'lib', 'package.json'] },
  balancer: { allowed: ['lib'] },
  infra: { allowed: ['lib'] },
  scripts: { forbidden: ['test', 'infra'] },
  harness: { forbidden: ['test', 'infra'] },
  bench: { forbidden: ['test', 'infra'] },
};

test('imports found: the scanner sees every kind of import this code uses', (t) => {
  // A scanner that found nothing would pass every rule below.
  t.true(imports.get('activity/main.ts')?.includes('replica/lifecycle.ts'), 'import { } from');
  t.true(imports.get('harness/balancer.ts')?.includes('balancer/status.ts'), 'import type');
  t.true(files.length > 150, `${files.length} files`);
  const unresolved = [...imports.values()].flat().filter((target) => target.includes(' -> unresolved '));
  t.deepEqual(unresolved, []);
});

test('each folder imports only what it may', (t) => {
  const broken: string[] = [];
  for (const [file, targets] of imports) {
    const rule = MAY_IMPORT[topFolder(file)];
    if (!rule) continue;
    for (const target of targets) {
      const folder = topFolder(target);
      if (folder === topFolder(file)) continue;
      if (rule.allowed && !rule.allowed.includes(folder))
        broken.push(`${file} imports ${target} (allowed: ${rule.allowed.join(', ') || 'nothing outside'})`);
      if (rule.forbidden?.includes(folder)) broken.push(`${file} imports ${target} (not allowed: ${rule.forbidden.join(', ')})`);
    }
  }
  t.deepEqual(broken, []);
});

/** Strongly connected components of more than one file, or a file importing itself (Tarjan). */
function importCircles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const circles: string[][] = [];
  const visit = (node: string) => {
    index.set(node, counter);
    low.set(node, counter++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || graph.get(node)?.includes(node)) circles.push(component.sort());
    }
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return circles;
}

test('the circle finder finds circles', (t) => {
  const graph = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a', 'd']],
    ['d', []],
    ['e', ['e']],
  ]);
  t.deepEqual(importCircles(graph), [['a', 'b', 'c'], ['e']]);
});

test('no import circles, type-only imports included', (t) => {
  t.deepEqual(importCircles(imports), []);
});
