import { createHash } from 'node:crypto';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sandboxRunHome } from '../home.js';
import type { SandboxOptions } from '../sandbox/options.js';
import { projectRoot } from './timings.js';

/*
 * Test-runner caches shared by every sandbox of a run and kept between runs.
 * Each sandbox starts with a fresh /tmp, so without this Jest (and ts-jest,
 * babel-jest inside it) transforms the whole project again in every one.
 *
 * Where: $SANDBOX_RUN_HOME/cache/<project hash>/<tool>, one directory per
 * project root, 0700. The home is hidden from every sandbox (mounts.ts), so
 * a sandbox sees only its own project's cache, bound in by the runner: the
 * cache holds transpiled project code that a sandbox of another project must
 * neither read nor poison. Nothing is added to the project tree (linters,
 * globs and Jest's own crawl never meet it; `--no-timings` still writes
 * nothing there).
 *
 * What: only caches whose writers are safe with several processes at once.
 */
export interface SharedCache {
  /** The directory's name under the project's cache. */
  tool: string;
  /** Where it appears inside the sandbox; undefined: not for these options (and why in the README). */
  target: (sandbox: SandboxOptions) => string | undefined;
}

/** The uid processes run as inside (identity.ts): the option, else the caller's, 65534 for root. */
function insideUid(sandbox: SandboxOptions): number {
  if (sandbox.uid !== undefined) return sandbox.uid;
  const uid = process.getuid?.() ?? 0;
  return uid === 0 ? 65534 : uid;
}

/** The TMPDIR processes see inside: the option's env, else the inherited one. */
function insideTmpdir(sandbox: SandboxOptions): string {
  const own = sandbox.env?.TMPDIR;
  const inherited = sandbox.inheritEnv === false ? undefined : process.env.TMPDIR;
  return resolve(own ?? inherited ?? '/tmp');
}

export const SHARED_CACHES: readonly SharedCache[] = [
  {
    // Jest's default cacheDirectory (jest-config getCacheDirectory): join(realpath(os.tmpdir()), 'jest_' + uid.toString(36)).
    // The transform cache (babel-jest, ts-jest) and the haste map live there. Only under the sandbox's own fresh
    // /tmp: another TMPDIR is a host directory, not ours to mount over.
    tool: 'jest',
    target: (sandbox) => (insideTmpdir(sandbox) === '/tmp' ? `/tmp/jest_${insideUid(sandbox).toString(36)}` : undefined),
  },
];

/** The project's cache directory in sandbox-run's home. */
export function projectCacheDir(cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const root = projectRoot(cwd);
  let real = root;
  try {
    real = realpathSync(root);
  } catch {}
  const hash = createHash('sha256').update(real).digest('hex').slice(0, 16);
  return join(sandboxRunHome(env), 'cache', hash);
}

/**
 * Read-write binds of the project's caches into every sandbox, made on the
 * host if missing. A target the caller binds or mounts already is left to
 * the caller.
 */
export function sharedCacheBinds(sandbox: SandboxOptions, env: NodeJS.ProcessEnv = process.env): { source: string; target: string; readonly: false }[] {
  const cwd = sandbox.cwd ?? process.cwd();
  const taken = new Set([...(sandbox.binds ?? []).map((bind) => bind.target ?? resolve(cwd, bind.source)), ...(sandbox.tmpfs ?? [])]);
  const dir = projectCacheDir(cwd, env);
  const binds: { source: string; target: string; readonly: false }[] = [];
  for (const cache of SHARED_CACHES) {
    const target = cache.target(sandbox);
    if (!target || taken.has(target)) continue;
    const source = join(dir, cache.tool);
    mkdirSync(source, { recursive: true, mode: 0o700 });
    binds.push({ source, target, readonly: false });
  }
  // Which project a hashed directory belongs to, for whoever clears it by hand.
  if (binds.length) writeFileSync(join(dir, 'project'), `${projectRoot(cwd)}\n`);
  return binds;
}
