// The events the hello service publishes for every committed user change, and where they go: one shape
// for the producer (service/: outbox and relay), the consumer (activity/) and the tests.
import { randomUUID } from 'node:crypto';

/** The JetStream stream every user event goes to; whoever connects first creates it (lib/broker.ts). */
export const USER_EVENTS_STREAM = 'USER_EVENTS';
export const USER_EVENTS_SUBJECTS = 'users.>';

export const USER_EVENT_TYPES = ['created', 'updated', 'deleted'] as const;
export type UserEventType = (typeof USER_EVENT_TYPES)[number];

/** One committed user change. `id` is unique per event: the broker's and the consumers' de-duplication key. */
export interface UserEvent {
  id: string;
  type: UserEventType;
  userId: string;
  /** When the change was written (ISO 8601). */
  at: string;
}

export function newUserEvent(type: UserEventType, userId: string, now: Date = new Date()): UserEvent {
  return { id: randomUUID(), type, userId, at: now.toISOString() };
}

/** `users.created`, `users.updated`, `users.deleted`. */
export function userEventSubject(type: UserEventType): string {
  return `users.${type}`;
}

/** The event in `text`, or undefined when it is not one (an entry or a message nobody should act on). */
export function parseUserEvent(text: string): UserEvent | undefined {
  let value: Partial<Record<keyof UserEvent, unknown>>;
  try {
    value = JSON.parse(text) as typeof value;
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { id, type, userId, at } = value;
  if (typeof id !== 'string' || id === '' || typeof userId !== 'string' || userId === '') return undefined;
  if (!USER_EVENT_TYPES.includes(type as UserEventType)) return undefined;
  if (typeof at !== 'string' || Number.isNaN(Date.parse(at))) return undefined;
  return { id, type: type as UserEventType, userId, at };
}
