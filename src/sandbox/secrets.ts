import { lstatSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { warnOnce } from '../warnings.js';

/** Credentials a test never needs and a compromised dependency would love. */
export const DEFAULT_MASKED_HOME_PATHS = [
  // keys and cloud credentials
  '.ssh',
  '.gnupg',
  '.aws',
  '.azure',
  '.config/gcloud',
  '.kube',
  '.docker',
  '.vault-token',
  '.terraform.d/credentials.tfrc.json',
  '.config/rclone',
  '.s3cfg',
  '.1password',
  '.local/share/keyrings',
  '.Xauthority',
  // package registries and forges
  '.npmrc',
  '.pypirc',
  '.gem/credentials',
  '.cargo/credentials',
  '.cargo/credentials.toml',
  '.config/gh',
  '.config/hub',
  '.netrc',
  '.git-credentials',
  '.config/git/credentials',
  // databases
  '.pgpass',
  '.my.cnf',
  // shell histories: typed passwords and tokens end up there
  '.bash_history',
  '.zsh_history',
  '.history',
  '.sh_history',
  '.python_history',
  '.node_repl_history',
  '.psql_history',
  '.mysql_history',
  '.local/share/fish/fish_history',
  '.lesshst',
  '.viminfo',
] as const;

/** Variable names that look like credentials: passed only when named in `passEnv`. */
const SECRET_NAME = /(TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|PRIVATE_?KEY|API_?KEY|ACCESS_?KEY|AUTH)|_(KEY|PASS|PWD|JWT|DSN)$/i;
/** A URL that carries a password: `postgres://user:pass@host/db`. */
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/@\s:]*:[^/@\s]+@/i;
/**
 * Addresses of the caller's runtime sockets (session bus, ssh-agent,
 * gpg-agent): the sandbox cannot reach them, and a test that finds one set
 * would try. Passed only when named.
 */
const RUNTIME_SOCKET_VARIABLES = new Set(['XDG_RUNTIME_DIR', 'DBUS_SESSION_BUS_ADDRESS', 'SSH_AUTH_SOCK', 'SSH_AGENT_PID', 'GPG_AGENT_INFO']);

/** Whether an inherited variable stays outside unless named: it looks like a credential or names a host socket. */
export function looksLikeSecret(name: string, value = ''): boolean {
  return SECRET_NAME.test(name) || URL_WITH_PASSWORD.test(value) || RUNTIME_SOCKET_VARIABLES.has(name);
}

/**
 * The inherited variables a sandbox gets: those that look like secrets are
 * dropped unless named in `passEnv`, and the names dropped are said once on
 * stderr, because a test that silently skips when its password variable
 * vanished is a false pass.
 */
export function inheritedEnv(env: Readonly<Record<string, string | undefined>>, passEnv: readonly string[]): Record<string, string> {
  const kept: Record<string, string> = {};
  const dropped: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (looksLikeSecret(name, value) && !passEnv.includes(name)) dropped.push(name);
    else kept[name] = value;
  }
  if (dropped.length > 0)
    warnOnce(
      `not passed into the sandbox (they look like credentials or host sockets): ${dropped.sort().join(' ')}; ` +
        "pass one with --pass-env NAME (passEnv: ['NAME'])",
    );
  return kept;
}

/** The home directories credentials may live in: $HOME and the passwd entry's, when they differ. */
export function homeDirectories(): string[] {
  let real: string | undefined;
  try {
    real = userInfo().homedir;
  } catch {
    // no passwd entry for this uid (some containers)
  }
  return [...new Set([homedir(), ...(real ? [real] : [])])];
}

/** Whether the caller can see `path` at all: what it cannot reach (ENOENT, EACCES) the sandbox, running as the same user, cannot either. */
function visible(path: string): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

/**
 * The credential paths that exist on the host and are to be hidden (the
 * helper hides each one the sandbox can see: a directory behind an empty
 * tmpfs, a file behind /dev/null). Paths under an allowed one, or containing
 * one, stay visible. Relative paths are taken in every home directory.
 */
export function masksFor(extra: readonly string[], allow: readonly string[], homes = homeDirectories()): string[] {
  const inHomes = (path: string) => homes.map((home) => resolve(home, path));
  const allowed = allow.flatMap(inHomes);
  const candidates = [...DEFAULT_MASKED_HOME_PATHS.flatMap((path) => homes.map((home) => join(home, path))), ...extra.flatMap(inHomes)];
  return [...new Set(candidates)].filter((path) => {
    if (allowed.some((a) => path === a || path.startsWith(`${a}/`) || a.startsWith(`${path}/`))) return false;
    return visible(path);
  });
}
