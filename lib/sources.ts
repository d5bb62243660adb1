// Content hash of the source trees that go into the bundle, computed when the program starts, so a
// code change shows up as a changed input (bundle trigger, image build arg) in `pulumi up`.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const SKIPPED_DIRS = new Set(['dist', 'node_modules', '.git']);
// Prose beside the code (README.md) goes into no bundle: editing it must not rebuild images and roll replicas.
const SKIPPED_FILE = /\.md$/i;

/** What every bundle is built from besides its own folder (scripts/build.mjs and what it reads). */
const SHARED_SOURCES = ['lib', 'package.json', 'package-lock.json', 'tsconfig.json', 'scripts/build.mjs', 'scripts/bundle-targets.json'];

export type BundledPart = 'service' | 'activity' | 'balancer';

/** Every file and folder a part's bundle (`<part>/dist`) is built from: both services run on replica/. */
const BUNDLE_SOURCES: Record<BundledPart, string[]> = {
  service: ['service', 'replica', ...SHARED_SOURCES],
  activity: ['activity', 'replica', ...SHARED_SOURCES],
  balancer: ['balancer', ...SHARED_SOURCES],
};

/**
 * lib/ files that no bundle imports (the Pulumi program's steps and the scripts use them): left out of every
 * bundle's files, so editing one rolls no replica. test/unit/bundle-sources.test.ts keeps the list exact.
 */
export const LIB_NOT_BUNDLED = [
  'lib/broker-service.ts',
  'lib/consul-acl-apply.ts',
  'lib/consul-limits.ts',
  'lib/sources.ts',
  'lib/ssh-tunnel.ts',
];

/** The files a part's bundle is built from, relative to `root`: what the stack hashes to notice a change. */
export function bundleFiles(root: string, part: BundledPart): string[] {
  return BUNDLE_SOURCES[part]
    .flatMap((source) => listFiles(root, source))
    .filter((file) => !LIB_NOT_BUNDLED.includes(file.split(path.sep).join('/')));
}

/** The files under `relative` (a file or a folder) that go into a bundle, as paths relative to `root`. */
export function listFiles(root: string, relative: string): string[] {
  const absolute = path.join(root, relative);
  if (!fs.existsSync(absolute)) return [];
  if (fs.statSync(absolute).isFile()) return [relative];
  return fs
    .readdirSync(absolute, { withFileTypes: true })
    .filter((entry) => (entry.isDirectory() ? !SKIPPED_DIRS.has(entry.name) : !SKIPPED_FILE.test(entry.name)))
    .flatMap((entry) => listFiles(root, path.join(relative, entry.name)));
}

/** sha256 over the paths and contents of the given files and folders under root (sorted, stable). */
export function hashSources(root: string, paths: string[]): string {
  return hashFiles(
    root,
    paths.flatMap((p) => listFiles(root, p)),
  );
}

/** sha256 over the paths and contents of the given files under root (sorted, stable). */
export function hashFiles(root: string, files: string[]): string {
  const hash = crypto.createHash('sha256');
  for (const file of [...files].sort()) {
    hash
      .update(file.split(path.sep).join('/'))
      .update('\0')
      .update(fs.readFileSync(path.join(root, file)))
      .update('\0');
  }
  return hash.digest('hex');
}
