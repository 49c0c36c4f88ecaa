import { lstatSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** Credentials a test never needs and a compromised dependency would love. */
export const DEFAULT_MASKED_HOME_PATHS = [
  '.ssh', '.aws', '.config/gcloud', '.docker', '.kube', '.npmrc', '.netrc', '.gnupg', '.config/gh',
  '.azure', '.pypirc', '.git-credentials', '.config/hub',
] as const;

/** Variable names that look like credentials: passed only when named in `passEnv`. */
const SECRET_NAME = /(TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|PRIVATE_?KEY|API_?KEY|ACCESS_?KEY|AUTH)/i;

export function looksLikeSecret(name: string): boolean {
  return SECRET_NAME.test(name);
}

/**
 * The credential paths that exist on the host and are to be hidden (the
 * helper hides each one the sandbox can see: a directory behind an empty
 * tmpfs, a file behind /dev/null). Paths under an allowed one, or containing
 * one, stay visible.
 */
export function masksFor(extra: readonly string[], allow: readonly string[], home = homedir()): string[] {
  const allowed = allow.map((path) => resolve(home, path));
  const candidates = [...DEFAULT_MASKED_HOME_PATHS.map((path) => join(home, path)), ...extra.map((path) => resolve(home, path))];
  return [...new Set(candidates)].filter((path) => {
    if (allowed.some((a) => path === a || path.startsWith(`${a}/`) || a.startsWith(`${path}/`))) return false;
    return lstatSync(path, { throwIfNoEntry: false }) !== undefined; // not there: nothing to hide
  });
}
