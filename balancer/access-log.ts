import dgram from 'node:dgram';

export interface AccessLogRelay {
  port: number;
  close(): Promise<void>;
}

/**
 * nginx sends its JSON access-log lines here as syslog over loopback UDP, and we print them on our
 * stdout. Used only when stdout is a socket (as under some process managers and the tests), which
 * nginx cannot open as /dev/stdout; it costs the watcher a datagram per request.
 */
export function startAccessLogRelay(write: (line: string) => void = (line) => process.stdout.write(line)): Promise<AccessLogRelay> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (message) => {
    const text = message.toString('utf8');
    // Strip the syslog header ("<190>Nov 26 22:58:58 nginx: "); the JSON object is the rest.
    const start = text.indexOf('{');
    if (start >= 0) write(text.slice(start).trimEnd() + '\n');
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      resolve({
        port: socket.address().port,
        close: () => new Promise<void>((done) => socket.close(() => done())),
      });
    });
  });
}
