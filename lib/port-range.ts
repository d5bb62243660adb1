/** The ports a replica's PORT allows: one (first = last), or a range whose first free port it listens on. */
export interface PortRange {
  first: number;
  last: number;
}

/** PORT's text for a range: `21001-21040`, or `8080` for a single port. */
export function portRangeText({ first, last }: PortRange): string {
  return first === last ? String(first) : `${first}-${last}`;
}
