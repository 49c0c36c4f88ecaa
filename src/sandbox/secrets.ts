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

export interface Mask {
  path: string;
  kind: 'dir' | 'file';
}

/**
 * The existing credential paths to hide: directories get an empty tmpfs,
 * files /dev/null. Paths under an allowed one (or allowing it) stay visible.
 */
export function masksFor(extra: readonly string[], allow: readonly string[], home = homedir()): Mask[] {
  const allowed = allow.map((path) => resolve(home, path));
  const candidates = [...DEFAULT_MASKED_HOME_PATHS.map((path) => join(home, path)), ...extra.map((path) => resolve(home, path))];
  const masks: Mask[] = [];
  for (const path of new Set(candidates)) {
    if (allowed.some((a) => path === a || path.startsWith(`${a}/`) || a.startsWith(`${path}/`))) continue;
    try {
      const st = lstatSync(path);
      if (st.isDirectory()) masks.push({ path, kind: 'dir' });
      else if (st.isFile()) masks.push({ path, kind: 'file' });
    } catch {
      // not there: nothing to hide
    }
  }
  return masks;
}
