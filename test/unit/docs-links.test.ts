// The docs stay a guide: the top README fits on a few screens and the READMEs together stay short (issue 24);
// the bench's figures live in its results file, which is not counted.
// Every relative link in the project's Markdown resolves: the file (or folder) exists, and a `#fragment` names a
// heading of the target as GitHub renders its anchor (lowercase; punctuation but `-` and `_` dropped; spaces
// to `-`; a repeated heading gets `-1`, `-2`, ...). Links to other sites are not followed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { REPO_ROOT } from '../helpers/record-stack';

const markdownFiles = execFileSync('git', ['ls-files', '*.md'], { cwd: REPO_ROOT, encoding: 'utf8' })
  .split('\n')
  .filter((file) => file && !file.includes('node_modules/'));

/** GitHub's anchor for a heading's text. */
function headingAnchor(text: string): string {
  return text
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(file: string): Set<string> {
  const text = fs.readFileSync(file, 'utf8').replace(/^```[\s\S]*?^```/gm, '');
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const match of text.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = headingAnchor(match[1].replace(/\[([^\]]*)\]\([^)]*\)/g, '$1'));
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

test('headingAnchor follows GitHub: backticks, punctuation and case dropped, spaces to hyphens', (t) => {
  t.is(headingAnchor("Consul's RPC between VMs: TLS both ways"), 'consuls-rpc-between-vms-tls-both-ways');
  t.is(headingAnchor('Admin login (`ADMIN_TOKEN_FILE`)'), 'admin-login-admin_token_file');
  t.is(headingAnchor('The gateway at scale: 1, 100 and 1,000 routed services'), 'the-gateway-at-scale-1-100-and-1000-routed-services');
});

test(`every relative link of the ${markdownFiles.length} Markdown files resolves, its #fragment too`, (t) => {
  const broken: string[] = [];
  let checked = 0;
  for (const file of markdownFiles) {
    const text = fs.readFileSync(path.join(REPO_ROOT, file), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
    for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const link = match[1];
      if (/^[a-z]+:/i.test(link)) continue;
      checked++;
      const [target, fragment] = link.split('#');
      const resolved = target === '' ? path.join(REPO_ROOT, file) : path.resolve(REPO_ROOT, path.dirname(file), target);
      if (!fs.existsSync(resolved)) {
        broken.push(`${file}: ${link} (no ${path.relative(REPO_ROOT, resolved)})`);
      } else if (fragment !== undefined && resolved.endsWith('.md') && !anchorsOf(resolved).has(fragment)) {
        broken.push(`${file}: ${link} (no heading #${fragment} in ${path.relative(REPO_ROOT, resolved)})`);
      }
    }
  }
  t.true(checked > 50, `${checked} links checked`);
  t.deepEqual(broken, []);
});

const README_MAX_LINES = 150;
const ALL_DOCS_MAX_WORDS = 12_000;

test(`the top README is at most ${README_MAX_LINES} lines, and all the READMEs at most ${ALL_DOCS_MAX_WORDS} words`, (t) => {
  const read = (file: string) => fs.readFileSync(path.join(REPO_ROOT, file), 'utf8');
  const lines = read('README.md').split('\n').length - 1;
  t.true(lines <= README_MAX_LINES, `README.md has ${lines} lines`);
  // Words as wc -w counts them: runs of non-space.
  const words = markdownFiles
    .filter((file) => /(^|\/)README\.md$/.test(file))
    .map((file) => ({ file, words: read(file).split(/\s+/).filter(Boolean).length }));
  const total = words.reduce((sum, w) => sum + w.words, 0);
  t.true(total <= ALL_DOCS_MAX_WORDS, `${total} words: ${words.map((w) => `${w.file} ${w.words}`).join(', ')}`);
});
