// A build context's .dockerignore as a predicate on slash-separated relative paths, as Docker applies it: the
// last matching pattern wins, `!` re-includes, and a pattern also matches everything under a matching folder
// (the `*`, `?` and `**` wildcards these contexts use). pulumi-docker's hashContext (provider/provider.go) skips
// what it excludes, and so do the stand-in's context hash and the mock recording's image ids.
import fs from 'node:fs';
import path from 'node:path';

export function dockerIgnore(context: string): (relative: string) => boolean {
  const file = path.join(context, '.dockerignore');
  const lines = fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'))
    : [];
  const rules = lines.map((line) => {
    const negated = line.startsWith('!');
    const pattern = path.posix.normalize((negated ? line.slice(1) : line).replace(/^\/+/, ''));
    const source = pattern
      .split('**')
      .map((part) =>
        part
          .split('*')
          .map((p) =>
            p
              .split('?')
              .map((q) => q.replace(/[.+^${}()|[\]\\]/g, '\\$&'))
              .join('[^/]'),
          )
          .join('[^/]*'),
      )
      .join('.*');
    return { negated, regex: new RegExp(`^${source}(/.*)?$`) };
  });
  return (relative) => rules.reduce((ignored, rule) => (rule.regex.test(relative) ? !rule.negated : ignored), false);
}
