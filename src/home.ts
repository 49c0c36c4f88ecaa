import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ownedName, ownerPid, sweepDeadOwners } from './process/sweep.js';

/** sandbox-run's own directory: $SANDBOX_RUN_HOME, else ${XDG_CACHE_HOME:-~/.cache}/sandbox-run. */
export function sandboxRunHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.SANDBOX_RUN_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'sandbox-run');
}

/**
 * A fresh directory `<home>/<kind>/<pid>-<unique>` for host-side things a
 * sandbox needs while it lives (socket directories, private copies). Those
 * of runners that died, even by SIGKILL, are removed first: their pid is in
 * the name.
 */
export function processScopedDir(kind: string, env: NodeJS.ProcessEnv = process.env): string {
  return makeScopedDir(plannedScopedDir(kind, env));
}

/** The path processScopedDir would make, without making it: for launch plans. */
export function plannedScopedDir(kind: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(sandboxRunHome(env), kind, ownedName());
}

/** Makes a planned scoped directory, sweeping those of dead runners beside it first. */
export function makeScopedDir(dir: string): string {
  const base = dirname(dir);
  mkdirSync(base, { recursive: true });
  sweepDeadOwners(base, ownerPid);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}
