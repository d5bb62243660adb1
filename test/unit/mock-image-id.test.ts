// The mock's image ids (test/helpers/engine-like.cjs): like the provider's, they follow the Dockerfile, the
// build args and the files of the context that .dockerignore lets in, never the tag.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { mockImageId } = require('../helpers/engine-like.cjs') as {
  mockImageId: (inputs: Record<string, unknown>, projectDir: string) => string;
};

test('an image id changes with an included file, the Dockerfile or a build arg, not with an ignored file or the tag', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-image-id-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (file: string, text: string) => fs.writeFileSync(path.join(dir, file), text);
  write('Dockerfile', 'FROM base\nCOPY keep.txt /\n');
  write('.dockerignore', '# only what the image needs\n*\n!keep.txt\n!Dockerfile\n');
  write('keep.txt', 'one');
  write('notes.md', 'one');
  const id = (args: Record<string, string> = {}, imageName = 'a:1') => mockImageId({ imageName, build: { context: dir, args } }, '/');
  const first = id();
  t.regex(first, /^sha256:[0-9a-f]{64}$/);
  t.is(id({}, 'other:2'), first, 'the tag is not part of the id');
  write('notes.md', 'two');
  t.is(id(), first, 'a file .dockerignore leaves out');
  write('keep.txt', 'two');
  const second = id();
  t.not(second, first, 'a file the build sees');
  t.not(id({ BASE_IMAGE: 'other' }), second, 'a build arg');
  write('Dockerfile', 'FROM base\nCOPY keep.txt /k\n');
  t.not(id(), second, 'the Dockerfile');
});
