// nginx.conf.template, read once beside this module (balancer/ under tsx, the bundle's dist/ where
// scripts/build.mjs copies it, /app in the image), split into its parts, and the one rule that fills them.
import fs from 'node:fs';
import path from 'node:path';

/** A part's values: a string for a `{{field}}` inside a line, lines for a `{{field}}` alone on its line. */
export type PartValues = Readonly<Record<string, string | readonly string[]>>;

const PART_START = /^### ([a-z][a-z.-]*):/;
const ALONE = /^\s*\{\{(\w+)\}\}\s*$/;
const FIELD = /\{\{(\w+)\}\}/;

/**
 * One line of a part, split once when the template is read (a config renders thousands of lines): plain
 * text, a field that stands for lines, or text around fields (`text` at even, field names at odd indexes).
 */
type TemplateLine = { text: string } | { lines: string } | { split: string[] };

export type TemplateParts = ReadonlyMap<string, readonly TemplateLine[]>;

/** The template's parts by name: their lines, `###` notes left out, without the blank lines that end them. */
export function parseTemplate(text: string): TemplateParts {
  const parts = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    const start = PART_START.exec(line);
    if (start) {
      if (parts.has(start[1])) throw new Error(`nginx template: part ${start[1]} is written twice`);
      current = [];
      parts.set(start[1], current);
    } else if (current && !line.trimStart().startsWith('###')) {
      current.push(line);
    }
  }
  const compiled = new Map<string, TemplateLine[]>();
  for (const [name, lines] of parts) {
    while (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop();
    compiled.set(
      name,
      lines.map((line) => {
        const alone = ALONE.exec(line);
        if (alone) return { lines: alone[1] };
        const split = line.split(FIELD);
        return split.length === 1 ? { text: line } : { split };
      }),
    );
  }
  return compiled;
}

/**
 * One part with its fields filled in. Every field the part names must be given, and every value given must
 * be used, so the template and the code cannot drift apart unnoticed.
 */
export function fillPart(parts: TemplateParts, name: string, values: PartValues = {}): string[] {
  const lines = parts.get(name);
  if (lines === undefined) throw new Error(`nginx template: no part ${name}`);
  const used = new Set<string>();
  const value = (field: string) => {
    if (!(field in values)) throw new Error(`nginx template: part ${name} needs a value for {{${field}}}`);
    used.add(field);
    return values[field];
  };
  const filled: string[] = [];
  for (const line of lines) {
    if ('text' in line) {
      filled.push(line.text);
    } else if ('lines' in line) {
      const v = value(line.lines);
      if (typeof v === 'string') throw new Error(`nginx template: {{${line.lines}}} in part ${name} stands for lines, not a string`);
      filled.push(...v);
    } else {
      const text = line.split.map((piece, i) => {
        if (i % 2 === 0) return piece;
        const v = value(piece);
        if (typeof v !== 'string') throw new Error(`nginx template: {{${piece}}} in part ${name} stands inside a line, not for lines`);
        return v;
      });
      filled.push(text.join(''));
    }
  }
  const unused = Object.keys(values).filter((field) => !used.has(field));
  if (unused.length > 0) throw new Error(`nginx template: part ${name} has no field ${unused.join(', ')}`);
  return filled;
}

/** The balancer's template; a missing file stops the watcher at start, before any config is written. */
export const NGINX_TEMPLATE = parseTemplate(fs.readFileSync(path.join(__dirname, 'nginx.conf.template'), 'utf8'));
