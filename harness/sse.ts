import http from 'node:http';
import { parseUserEvent, type UserEvent } from '../lib/user-events';
import { waitFor } from './processes';

/** One message of an event stream, as EventSource would hand it over. */
export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

/**
 * An event-stream reader, fed the text as it arrives: messages end at a blank line, `data` lines join
 * with newlines, comment lines (`:`) are counted apart (the heartbeats). The reading side of the format
 * (html.spec.whatwg.org, "Parsing an event stream"), for tests and the bench.
 */
export function sseParser(onMessage: (m: SseMessage) => void, onComment: (text: string) => void = () => undefined) {
  let buffer = '';
  let current: { id?: string; event?: string; data: string[] } = { data: [] };
  return (text: string) => {
    buffer += text;
    let newline: number;
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
      if (line === '') {
        if (current.data.length > 0) onMessage({ id: current.id, event: current.event, data: current.data.join('\n') });
        current = { data: [] };
      } else if (line.startsWith(':')) {
        onComment(line.slice(1).trim());
      } else {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') current.data.push(value);
        else if (field === 'id') current.id = value;
        else if (field === 'event') current.event = value;
      }
    }
  };
}

export interface EventStream {
  /** The user events received, in order (duplicates included: the tests count them). */
  events: UserEvent[];
  /** The SSE id of each of `events` (what EventSource would send back as Last-Event-ID). */
  ids: Array<string | undefined>;
  comments: string[];
  /** Response headers. */
  headers: http.IncomingHttpHeaders;
  /** When each event arrived (performance.now()), by event id (the first arrival). */
  arrivedAt: Map<string, number>;
  /** Waits until `check(events)` holds. */
  until(what: string, check: (events: UserEvent[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Whether the server ended the stream. */
  ended(): boolean;
  close(): void;
}

/**
 * Opens `GET <baseUrl>/api/activity/stream` and resolves once the response has begun (the client is
 * subscribed). `lastEventId` reconnects as EventSource does, with the id of the last event it got.
 */
export function openEventStream(baseUrl: string, path = '/api/activity/stream', lastEventId?: string): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const events: UserEvent[] = [];
    const ids: Array<string | undefined> = [];
    const comments: string[] = [];
    const arrivedAt = new Map<string, number>();
    let ended = false;
    const headers = { accept: 'text/event-stream', ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }) };
    const req = http.get(`${baseUrl}${path}`, { headers }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`${path} answered ${res.statusCode}`));
        return;
      }
      const feed = sseParser(
        (m) => {
          const event = parseUserEvent(m.data);
          if (!event) return;
          events.push(event);
          ids.push(m.id);
          if (!arrivedAt.has(event.id)) arrivedAt.set(event.id, performance.now());
        },
        (c) => comments.push(c),
      );
      res.setEncoding('utf8');
      res.on('end', () => (ended = true));
      res.on('error', () => (ended = true));
      res.on('close', () => (ended = true));
      let first = true;
      res.on('data', (chunk: string) => {
        feed(chunk);
        if (first) {
          first = false;
          resolve({
            events,
            ids,
            comments,
            headers: res.headers,
            arrivedAt,
            until: (what, check, timeoutMs = 10_000) => waitFor(what, () => check(events), timeoutMs, 20).then(() => undefined),
            ended: () => ended,
            close: () => req.destroy(),
          });
        }
      });
    });
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error('event stream idle for 60 s')));
  });
}
