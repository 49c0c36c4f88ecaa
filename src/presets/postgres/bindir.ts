import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SandboxError } from '../../errors.js';

const hasServer = (dir: string) => existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'initdb'));

/** Major versions installed in Debian's (/usr/lib/postgresql/N) and PGDG RPM's (/usr/pgsql-N) layouts, newest first. */
export function installedVersions(): number[] {
  const found = new Set<number>();
  const scan = (parent: string, pattern: RegExp, dir: (v: string) => string) => {
    try {
      for (const entry of readdirSync(parent)) {
        const match = pattern.exec(entry);
        if (match && hasServer(dir(entry))) found.add(Number(match[1]));
      }
    } catch {
      // not this layout
    }
  };
  scan('/usr/lib/postgresql', /^(\d+)$/, (v) => `/usr/lib/postgresql/${v}/bin`);
  scan('/usr', /^pgsql-(\d+)$/, (v) => `/usr/${v}/bin`);
  return [...found].sort((a, b) => b - a);
}

/** The bin directory of major version `version`, or a one-line error saying which exist and how to install it. */
function versionBindir(version: number): string {
  const dir = [`/usr/lib/postgresql/${version}/bin`, `/usr/pgsql-${version}/bin`].find(hasServer);
  if (dir) return dir;
  const have = installedVersions();
  throw new SandboxError(
    'SETUP_FAILED',
    `postgres preset: PostgreSQL ${version} is not installed (${have.length ? `installed: ${have.join(', ')}` : 'none installed'}); ` +
      `install it (apt-get install postgresql-${version}, from apt.postgresql.org if your release lacks it; ` +
      `dnf install postgresql${version}-server) or set bindir`,
  );
}

/** Finds the server binaries or says how to install them. */
export function findPostgresBindir(explicit?: string, version?: number): string {
  if (explicit) {
    if (!hasServer(explicit)) throw new SandboxError('SETUP_FAILED', `postgres preset: bindir ${explicit} has no postgres and initdb`);
    return explicit;
  }
  if (version !== undefined) return versionBindir(version);
  const candidates: string[] = [];
  if (process.env.PG_BINDIR) candidates.push(process.env.PG_BINDIR);
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    // no pg_config on PATH
  }
  candidates.push(...installedVersions().flatMap((v) => [`/usr/lib/postgresql/${v}/bin`, `/usr/pgsql-${v}/bin`]));
  const found = candidates.find(hasServer);
  if (!found)
    throw new SandboxError(
      'SETUP_FAILED',
      'PostgreSQL server binaries (postgres, initdb) not found: install them (apt-get install postgresql, dnf install postgresql-server) or set PG_BINDIR',
    );
  return found;
}

/** `postgres --version` of a bin directory, and its major version. */
export function serverVersion(bindir: string): { version: string; major: number } {
  const version = execFileSync(join(bindir, 'postgres'), ['--version'], { encoding: 'utf8' }).trim();
  return { version, major: Number(/(\d+)/.exec(version.replace(/^\D+/, ''))?.[1]) };
}
