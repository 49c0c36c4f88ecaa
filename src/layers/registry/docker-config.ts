/**
 * Registry credentials from docker's config file (what `docker login`,
 * `podman login --authfile` and `crane auth login` write): `auths.<host>.auth`
 * (base64 `user:password`) or `username`/`password`. Credential helpers
 * (`credsStore`, `credHelpers`) are not run: their secrets stay where they are.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface Credentials {
  username: string;
  password: string;
  /** Where they came from, for error messages: `/home/u/.docker/config.json (auths."ghcr.io")`. */
  source: string;
}

export interface CredentialLookup {
  credentials?: Credentials;
  /** The config file read (or looked for). */
  file: string;
  /** A credential helper that would hold this registry's credentials, not run by sandbox-run. */
  helper?: string;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker'), 'config.json');
}

/** The keys a registry may be stored under: docker writes Docker Hub as its v1 URL, others as the host (some with a scheme). */
function keysFor(registry: string): string[] {
  if (registry === 'docker.io') return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];
  return [registry];
}

/** `https://ghcr.io/v2/` -> `ghcr.io`. */
const hostOf = (key: string) => key.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '');

interface ConfigFile {
  auths?: Record<string, { auth?: unknown; username?: unknown; password?: unknown }>;
  credsStore?: unknown;
  credHelpers?: Record<string, unknown>;
}

/** The credentials for `registry` in the docker config file, if any. A missing or unreadable file means none. */
export function lookupCredentials(registry: string, file = dockerConfigFile()): CredentialLookup {
  let config: ConfigFile;
  try {
    config = JSON.parse(readFileSync(file, 'utf8')) as ConfigFile;
  } catch {
    return { file };
  }
  const keys = keysFor(registry);
  const auths = config.auths && typeof config.auths === 'object' ? config.auths : {};
  for (const [key, entry] of Object.entries(auths)) {
    if (!keys.includes(key) && !keys.includes(hostOf(key))) continue;
    if (!entry || typeof entry !== 'object') continue;
    let username: string | undefined;
    let password: string | undefined;
    if (typeof entry.auth === 'string' && entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) {
        username = decoded.slice(0, colon);
        password = decoded.slice(colon + 1);
      }
    } else if (typeof entry.username === 'string' && typeof entry.password === 'string') {
      username = entry.username;
      password = entry.password;
    }
    if (username !== undefined && password !== undefined) return { file, credentials: { username, password, source: `${file} (auths."${key}")` } };
  }
  const helper = keys.map((key) => config.credHelpers?.[key]).find((value) => typeof value === 'string') ?? config.credsStore;
  return { file, ...(typeof helper === 'string' && helper ? { helper } : {}) };
}
