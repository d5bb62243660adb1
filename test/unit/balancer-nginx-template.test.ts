import test from 'ava';
import { fillPart, parseTemplate } from '../../balancer/nginx-template';

const TEMPLATE = [
  '#### a note on the file, before any part',
  '### outer: a part',
  '# a comment nginx reads',
  'listen {{listen}};',
  '  ### a note inside a part',
  '{{inner}}',
  '',
  '',
  '### inner: another part',
  '  return 200 "{{text}}";',
  '',
].join('\n');

test('parts: notes (### lines) are left out, comments kept, the blank lines that end a part dropped', (t) => {
  const parts = parseTemplate(TEMPLATE);
  t.deepEqual([...parts.keys()], ['outer', 'inner']);
  t.deepEqual(fillPart(parts, 'outer', { listen: '{{listen}}', inner: ['{{inner}}'] }), [
    '# a comment nginx reads',
    'listen {{listen}};',
    '{{inner}}',
  ]);
  t.deepEqual(fillPart(parts, 'inner', { text: '{{text}}' }), ['  return 200 "{{text}}";']);
  t.throws(() => parseTemplate('### a: x\n### a: y\n'), { message: /part a is written twice/ });
});

test('a field inside a line takes a string; a field alone on its line takes lines, none removing the line', (t) => {
  const parts = parseTemplate(TEMPLATE);
  const inner = fillPart(parts, 'inner', { text: 'ok' });
  t.deepEqual(fillPart(parts, 'outer', { listen: '127.0.0.1:80', inner }), [
    '# a comment nginx reads',
    'listen 127.0.0.1:80;',
    '  return 200 "ok";',
  ]);
  t.deepEqual(fillPart(parts, 'outer', { listen: '[::1]:80', inner: [] }), ['# a comment nginx reads', 'listen [::1]:80;']);
});

test('the template and the code cannot drift apart: a missing, unused or misplaced value, or an unknown part, throws', (t) => {
  const parts = parseTemplate(TEMPLATE);
  t.throws(() => fillPart(parts, 'inner'), { message: /part inner needs a value for \{\{text\}\}/ });
  t.throws(() => fillPart(parts, 'inner', { text: 'ok', other: 'x' }), { message: /part inner has no field other/ });
  t.throws(() => fillPart(parts, 'inner', { text: ['ok'] }), { message: /stands inside a line/ });
  t.throws(() => fillPart(parts, 'outer', { listen: 'x', inner: 'y' }), { message: /stands for lines/ });
  t.throws(() => fillPart(parts, 'missing'), { message: /no part missing/ });
});
