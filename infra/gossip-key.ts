// Consul's gossip encryption key: the user's `consulGossipKey` secret when set, else one the stack makes
// once. A local.Command prints 32 random bytes in base64 (what `consul keygen` prints); its stdout is a
// secret output kept in the stack's state. It has no triggers and its inputs never change, so the engine
// never runs it again: the key stays the same across `pulumi up`s until the stack is destroyed.
import * as pulumi from '@pulumi/pulumi';
import { generatedSecret } from './consul-acl';

/** Constant on purpose: a changed `create` would be an update, which re-runs it and makes a new key. */
export const GOSSIP_KEY_SCRIPT = `node -e "process.stdout.write(require('crypto').randomBytes(32).toString('base64'))"`;

/** The key every Consul agent of the stack is started with (`-encrypt`), as a secret. */
export function gossipKey(userKey: string): pulumi.Output<string> {
  if (userKey !== '') return pulumi.secret(userKey);
  return generatedSecret('consul-gossip-key', GOSSIP_KEY_SCRIPT);
}
