import type { UserInput } from './users-store';

// Ids are made by randomUUID; anything else cannot name a user (and never reaches a KV key).
export const USER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export type Validated = { ok: true; value: UserInput } | { ok: false; field: string; error: string };

const FIELDS = ['name', 'email'];
// Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is not our concern.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
// NUL, escape sequences and other control characters (C0, DEL, C1) would reach logs, terminals and every
// client that lists users verbatim; no name or address needs one.
const CONTROL = /\p{Cc}/u;
const CONTROL_ALLOWED = 'no control characters (U+0000 to U+001F, U+007F to U+009F)';
// A field name is echoed in the error only when it is plainly a name, never a client's arbitrary text.
const PLAIN_FIELD = /^[A-Za-z0-9_.-]{1,40}$/;

/** Checks a parsed JSON body for POST and PUT /api/users; errors name the offending field. */
export function validateUserInput(body: unknown): Validated {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, field: 'body', error: 'body must be a JSON object with "name" and "email"' };
  }
  const record = body as Record<string, unknown>;
  const unknown = Object.keys(record).find((key) => !FIELDS.includes(key));
  if (unknown !== undefined) {
    const field = PLAIN_FIELD.test(unknown) ? unknown : '(unnamed)';
    const which = PLAIN_FIELD.test(unknown) ? `unknown field "${unknown}"` : 'an unknown field';
    return { ok: false, field, error: `${which}; allowed fields are "name" and "email"` };
  }
  const { name, email } = record;
  if (typeof name !== 'string' || name.trim().length < 1 || name.trim().length > 100) {
    return { ok: false, field: 'name', error: '"name" is required: a string of 1 to 100 characters' };
  }
  if (CONTROL.test(name.trim())) return { ok: false, field: 'name', error: `"name" must contain ${CONTROL_ALLOWED}` };
  if (typeof email !== 'string' || email.trim().length > 254 || !EMAIL.test(email.trim())) {
    return { ok: false, field: 'email', error: '"email" is required: an address like someone@example.com (at most 254 characters)' };
  }
  if (CONTROL.test(email.trim())) return { ok: false, field: 'email', error: `"email" must contain ${CONTROL_ALLOWED}` };
  return { ok: true, value: { name: name.trim(), email: email.trim() } };
}
