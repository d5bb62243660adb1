// One child process run to its end with its output kept, as the provider's os/exec and ssh session runs are.
import { spawn } from 'node:child_process';

export interface ProcessResult {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Both streams interleaved as they came: what the provider's error message quotes. */
  combined: string;
}

export interface ProcessOptions {
  cwd?: string;
  env: NodeJS.ProcessEnv;
  /** Written to standard input when not ''; otherwise the command reads /dev/null (os/exec with a nil Stdin). */
  stdin?: string;
  /** Killed (SIGKILL, as exec.CommandContext does) after this long; 0 = no limit. */
  timeoutMs: number;
}

/** Runs `argv` to completion; rejects only when it cannot be started (no such program or directory). */
export function runProcess(argv: string[], { cwd, env, stdin, timeoutMs }: ProcessOptions): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { cwd, env, stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const both: Buffer[] = [];
    child.stdout!.on('data', (chunk: Buffer) => (out.push(chunk), both.push(chunk)));
    child.stderr!.on('data', (chunk: Buffer) => (err.push(chunk), both.push(chunk)));
    const timer = timeoutMs > 0 ? setTimeout(() => child.kill('SIGKILL'), timeoutMs) : undefined;
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const text = (chunks: Buffer[]) => Buffer.concat(chunks).toString('utf8');
      resolve({ code, signal, stdout: text(out), stderr: text(err), combined: text(both) });
    });
    if (stdin) {
      // A command that exits without reading all of its input is not an error (EPIPE).
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(stdin);
    }
  });
}

/** Output as the provider keeps it: one trailing newline taken off (strings.TrimSuffix(s, "\n")). */
export function trimOutput(text: string): string {
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}
