import { chmodSync, lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** sandbox-run's own directory: $SANDBOX_RUN_HOME, else ${XDG_CACHE_HOME:-~/.cache}/sandbox-run. */
export function sandboxRunHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.SANDBOX_RUN_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'sandbox-run');
}

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Gives the owner rwx on every directory below `path` (overlayfs leaves work/work at 000; tests chmod dirs read-only). */
function openUp(path: string): void {
  if (!lstatSync(path, { throwIfNoEntry: false })?.isDirectory()) return;
  chmodSync(path, 0o700);
  for (const name of readdirSync(path)) openUp(join(path, name));
}

/** Removes a tree the caller owns even where directories in it deny the owner write or search. */
export function removeTree(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
  } catch {
    openUp(path);
    rmSync(path, { recursive: true, force: true });
  }
}

/**
 * A fresh directory `<home>/<kind>/<pid>-<unique>` for host-side things a
 * sandbox needs while it lives (socket directories, private copies). Those
 * of runners that died, even by SIGKILL, are removed first: their pid is in
 * the name.
 */
export function processScopedDir(kind: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = join(sandboxRunHome(env), kind);
  mkdirSync(base, { recursive: true });
  for (const entry of readdirSync(base)) {
    const pid = Number(entry.split('-')[0]);
    if (Number.isInteger(pid) && pid !== process.pid && !processAlive(pid)) removeTree(join(base, entry));
  }
  const dir = join(base, `${process.pid}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}
