import type { UserInput } from './users-store';

export type Validated = { ok: true; value: UserInput } | { ok: false; field: string; error: string };

const FIELDS = ['name', 'email'];
// Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is not our concern.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Checks a parsed JSON body for POST and PUT /api/users; errors name the offending field. */
export function validateUserInput(body: unknown): Validated {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, field: 'body', error: 'body must be a JSON object with "name" and "email"' };
  }
  const record = body as Record<string, unknown>;
  const unknown = Object.keys(record).find((key) => !FIELDS.includes(key));
  if (unknown !== undefined) {
    return { ok: false, field: unknown, error: `unknown field "${unknown}"; allowed fields are "name" and "email"` };
  }
  const { name, email } = record;
  if (typeof name !== 'string' || name.trim().length < 1 || name.trim().length > 100) {
    return { ok: false, field: 'name', error: '"name" is required: a string of 1 to 100 characters' };
  }
  if (typeof email !== 'string' || email.trim().length > 254 || !EMAIL.test(email.trim())) {
    return { ok: false, field: 'email', error: '"email" is required: an address like someone@example.com (at most 254 characters)' };
  }
  return { ok: true, value: { name: name.trim(), email: email.trim() } };
}
