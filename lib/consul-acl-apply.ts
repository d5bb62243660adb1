// Puts an ACL plan (lib/consul-acl.ts) into Consul over its HTTP API, idempotently. Kept apart from the
// model so the Pulumi program, which needs only the model, never loads it.
import { retryUntil } from './backoff';
import type { AclPlan } from './consul-acl';

export interface ApplyOptions {
  /** How long to keep retrying while Consul is not ready (no leader yet, ACLs not bootstrapped). */
  readyTimeoutMs?: number;
  log?: (line: string) => void;
}

class ConsulAnswer extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Creates or updates every policy and token of `plan` in the Consul at `httpAddr`, authenticated by the
 * management token. Running it again changes nothing: policies are found by name, tokens by their
 * chosen AccessorID, and existing ones are updated in place (their SecretID never changes).
 */
export async function applyAclPlan(httpAddr: string, managementToken: string, plan: AclPlan, options: ApplyOptions = {}): Promise<void> {
  const call = async (method: 'GET' | 'PUT', path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(httpAddr + path, {
      method,
      headers: { 'X-Consul-Token': managementToken, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    if (!res.ok) throw new ConsulAnswer(res.status, `${method} ${path}: HTTP ${res.status} ${text.trim().slice(0, 200)}`);
    return text ? (JSON.parse(text) as unknown) : null;
  };
  // Consul answers a missing policy or token with 403 "ACL not found" (1.8) or 404 (later versions).
  const missing = (error: unknown) => error instanceof ConsulAnswer && (error.status === 404 || /not found/i.test(error.message));

  // A management-only endpoint: it answers once the leader has bootstrapped the management token.
  await retryUntil(() => call('GET', '/v1/acl/policies'), options.readyTimeoutMs ?? 60_000, "Consul's ACL system did not become ready");

  for (const policy of plan.policies) {
    const body = { Name: policy.name, Description: policy.description, Rules: policy.rules };
    let existing: { ID: string } | undefined;
    try {
      existing = (await call('GET', `/v1/acl/policy/name/${encodeURIComponent(policy.name)}`)) as { ID: string };
    } catch (error) {
      if (!missing(error)) throw error;
    }
    if (existing) await call('PUT', `/v1/acl/policy/${existing.ID}`, { ID: existing.ID, ...body });
    else await call('PUT', '/v1/acl/policy', body);
    options.log?.(`policy ${policy.name} ${existing ? 'updated' : 'created'}`);
  }

  for (const token of plan.tokens) {
    const body = {
      AccessorID: token.accessorId,
      SecretID: token.secretId,
      Description: token.description,
      Policies: token.policies.map((Name) => ({ Name })),
    };
    let exists = true;
    try {
      await call('GET', `/v1/acl/token/${token.accessorId}`);
    } catch (error) {
      if (!missing(error)) throw error;
      exists = false;
    }
    if (exists) await call('PUT', `/v1/acl/token/${token.accessorId}`, body);
    else await call('PUT', '/v1/acl/token', body);
    options.log?.(`token ${token.description} ${exists ? 'updated' : 'created'}`);
  }
}
