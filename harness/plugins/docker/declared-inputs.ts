// Every input is read through DeclaredInputs, which refuses any declared key the translation did not use:
// a program cannot declare something that is silently ignored.

export type Inputs = Record<string, unknown>;

export function isEmpty(value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object') return Object.keys(value).length === 0;
  return false;
}

/** Reads declared inputs and remembers which ones were applied. */
export class DeclaredInputs {
  private readonly used = new Set<string>();
  constructor(
    private readonly values: Inputs,
    readonly where: string,
  ) {}

  get<T>(key: string): T | undefined {
    this.used.add(key);
    const value = this.values[key];
    return isEmpty(value) ? undefined : (value as T);
  }

  /** An input accepted only with the given value (or absent). */
  expect(key: string, allowed: unknown, why: string): void {
    const value = this.get(key);
    if (value !== undefined && value !== allowed) {
      throw new Error(`${this.where} sets ${key}=${JSON.stringify(value)}; only ${JSON.stringify(allowed)} is applied (${why})`);
    }
  }

  /** Each element of an array input, read with its own DeclaredInputs. */
  items(key: string): DeclaredInputs[] {
    const list = this.get<Inputs[]>(key) ?? [];
    return list.map((item, i) => new DeclaredInputs(item, `${this.where}.${key}[${i}]`));
  }

  nested(key: string): DeclaredInputs | undefined {
    const value = this.get<Inputs>(key);
    return value === undefined ? undefined : new DeclaredInputs(value, `${this.where}.${key}`);
  }

  /** Throws naming every declared input that nothing read. */
  done(): void {
    const unapplied = Object.keys(this.values).filter((k) => !this.used.has(k) && !isEmpty(this.values[k]));
    if (unapplied.length > 0) {
      throw new Error(
        `${this.where} declares ${unapplied.map((k) => `${k}=${JSON.stringify(this.values[k])}`).join(', ')}, ` +
          `which is not applied; applied inputs are: ${[...this.used].sort().join(', ')}`,
      );
    }
  }
}
