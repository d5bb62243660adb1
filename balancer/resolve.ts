// The step between watch and render: host names in Consul's entries become IP literals here, so nginx
// never resolves anything itself (it does so at load, and one failing name fails the whole config).
import dns from 'node:dns';
import type { Resolution } from './consul-entries';

/** All addresses of one host name; rejects when it has none. */
export type LookupAll = (name: string) => Promise<string[]>;

/** Resolves each name once; always answers, a name that fails or is too slow carries the reason. */
export type ResolveNames = (names: readonly string[]) => Promise<ReadonlyMap<string, Resolution>>;

/** Bounds one watcher round: a name the system resolver has not answered by then is dropped for this round. */
export const RESOLVE_TIMEOUT_MS = 2000;

/** The system resolver (getaddrinfo: /etc/hosts, then DNS, as nginx would have resolved the name). */
export function systemLookup(): LookupAll {
  // getaddrinfo cannot be cancelled and holds one of libuv's 4 pool threads until the resolver gives up;
  // sharing the lookup already in flight for a name keeps a slow name from filling the pool.
  const inFlight = new Map<string, Promise<string[]>>();
  return (name) => {
    let pending = inFlight.get(name);
    if (!pending) {
      pending = dns.promises
        .lookup(name, { all: true, verbatim: true })
        .then((answers) => answers.map((a) => a.address))
        .finally(() => inFlight.delete(name));
      inFlight.set(name, pending);
    }
    return pending;
  };
}

/** Resolves `names` in parallel with `lookup`, each bounded by `timeoutMs`. */
export function nameResolver(lookup: LookupAll, timeoutMs = RESOLVE_TIMEOUT_MS): ResolveNames {
  const one = async (name: string): Promise<Resolution> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<Resolution>((resolve) => {
      timer = setTimeout(() => resolve({ error: `no answer within ${timeoutMs} ms` }), timeoutMs);
    });
    const answer = lookup(name).then(
      (addresses): Resolution => (addresses.length > 0 ? { addresses } : { error: 'no address' }),
      (error: unknown): Resolution => ({
        error: error instanceof Error ? ((error as NodeJS.ErrnoException).code ?? error.message) : String(error),
      }),
    );
    try {
      return await Promise.race([answer, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  return async (names) => {
    const unique = [...new Set(names)];
    const results = await Promise.all(unique.map(one));
    return new Map(unique.map((name, i) => [name, results[i]]));
  };
}
