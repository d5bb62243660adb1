// One logger for the service and the balancer: one JSON object per line on stdout, the same shape for
// every message, so the collector and a reader can parse every line. `time`, `level` and `msg` are on
// every line, with the part's identity fields (`source`, `instance`) between them.
export type LogLevel = 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

/** Errors do not survive JSON.stringify; keep what a reader of the log needs. */
function plain(value: unknown): unknown {
  return value instanceof Error ? value.message : value;
}

/**
 * `identity` goes on every line: the balancer logs `{ source: 'balancer' }`; a replica logs its
 * `instance` id, because the lines of all replicas end up in one combined file.
 */
export function createLogger(identity: LogFields, write: (line: string) => void = (line) => process.stdout.write(line)): Logger {
  const log =
    (level: LogLevel) =>
    (msg: string, fields: LogFields = {}) => {
      const entry: LogFields = { time: new Date().toISOString(), level, ...identity, msg };
      for (const [key, value] of Object.entries(fields)) entry[key] = plain(value);
      write(JSON.stringify(entry) + '\n');
    };
  return { info: log('info'), warn: log('warn'), error: log('error') };
}
