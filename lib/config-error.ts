// One error class and one message format for bad configuration, in every part: the message names the
// variable or key, the value given and what is allowed, so the user can fix it without reading code.

/** A value the user set is not allowed; the message says which, and what would be. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** `PORT = "abc" is not allowed: use a whole number from 1 to 65535`. */
export function configProblem(name: string, value: string, allowed: string): string {
  return `${name} = ${JSON.stringify(value)} is not allowed: use ${allowed}`;
}

/** Throws a ConfigError for one bad value; typed `never` so it can end an expression. */
export function rejectConfig(name: string, value: string, allowed: string): never {
  throw new ConfigError(configProblem(name, value, allowed));
}

/** An environment variable's value, trimmed; unset, empty and blank all mean "use the default". */
export function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

/**
 * A secret read from the file the variable `name` names (how the stack hands secrets over, so `docker inspect`
 * never shows them), trimmed. Errors name the variable and the file, never the value.
 */
export function readSecretFile(name: string, file: string, allowed: string, readFile: (file: string) => string): string {
  try {
    return readFile(file).trim();
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new ConfigError(`${name} (${file}) cannot be read (${reason}): use a readable file holding ${allowed}`);
  }
}
