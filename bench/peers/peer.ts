import type { Replica } from '../../harness/service';
import { readStat, rssMB } from '../proc-stats';

/** The balancers measured side by side; `ours` is the watcher + nginx under test. */
export const PEER_NAMES = ['ours', 'haproxy-dns', 'nginx-static', 'nginx-static-log'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

/** What a phase needs to know to see whether a replica takes traffic through a balancer. */
export interface RotationTarget {
  /** Base URL of the balancer's proxied path. */
  url: string;
  /**
   * Where the same proxying answers with `X-Upstream-Addr` (the upstreams tried), when that is not `url`:
   * our public port no longer sends it, our admin listener does, with the same upstreams and retry rules.
   * The removal phases' loop goes there, to count requests answered after a retry.
   */
  namingUrl?: string;
  /**
   * Whether `replica` is in the balancer's rotation, read from the balancer's own state (our status
   * page, HAProxy's stats). Absent when the balancer has no such state: a static list always lists it.
   */
  inRotation?: (replica: Replica) => Promise<boolean>;
}

/** One balancer, started by the benchmark on the test core, with its processes for CPU and memory. */
export interface Peer extends RotationTarget {
  name: PeerName;
  /** How it is set up, one line for the report. */
  description: string;
  /** Whether it learns of new replicas itself; a static list needs a hand edit and a reload. */
  discovers: boolean;
  /** Every live process of the balancer (all of them count for CPU and memory). */
  pids(): number[];
  /** CPU its processes have used so far, reaped children (nginx workers replaced by a reload) included, in µs. */
  cpuUs(): number;
  /** Static peers only: the hand edit and reload that makes `replicas` the upstream list. */
  setUpstreams?: (replicas: Replica[]) => Promise<void>;
  stop(): Promise<void>;
}

/** CPU of `pids` and of their reaped children so far, in µs (NaN when none is alive). */
export function cpuOf(pids: number[]): number {
  if (pids.length === 0) return Number.NaN;
  return pids.reduce((sum, pid) => {
    const stat = readStat(pid);
    return sum + (stat ? stat.cpuUs + stat.reapedChildrenCpuUs : 0);
  }, 0);
}

/** RSS of a balancer's processes together, in MB. */
export const rssOf = (pids: number[]): number => (pids.length ? pids.reduce((sum, pid) => sum + rssMB(pid), 0) : Number.NaN);
