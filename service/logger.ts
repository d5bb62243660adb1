export type LogLevel = 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

/** Errors do not survive JSON.stringify; keep what a reader of the log needs. */
function plain(value: unknown): unknown {
  if (value instanceof Error) return value.message;
  return value;
}

/**
 * One JSON object per line, so a log collector can parse every line; `instance` is on each
 * line because the lines of all replicas end up in one combined file.
 */
export function createLogger(instance: string, write: (line: string) => void = (line) => process.stdout.write(line)): Logger {
  const log = (level: LogLevel, msg: string, fields: LogFields = {}) => {
    const entry: LogFields = { time: new Date().toISOString(), level, instance, msg };
    for (const [key, value] of Object.entries(fields)) entry[key] = plain(value);
    write(JSON.stringify(entry) + '\n');
  };
  return {
    info: (msg, fields) => log('info', msg, fields),
    warn: (msg, fields) => log('warn', msg, fields),
    error: (msg, fields) => log('error', msg, fields),
  };
}
