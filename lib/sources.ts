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
export const BUNDLE_SOURCES: Record<BundledPart, string[]> = {
  service: ['service', 'replica', ...SHARED_SOURCES],
  activity: ['activity', 'replica', ...SHARED_SOURCES],
  balancer: ['balancer', ...SHARED_SOURCES],
};

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
  const hash = crypto.createHash('sha256');
  const files = paths.flatMap((p) => listFiles(root, p)).sort();
  for (const file of files) {
    hash
      .update(file.split(path.sep).join('/'))
      .update('\0')
      .update(fs.readFileSync(path.join(root, file)))
      .update('\0');
  }
  return hash.digest('hex');
}
