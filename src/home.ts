import { mkdirSync, readdirSync, rmSync } from 'node:fs';
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
    if (Number.isInteger(pid) && pid !== process.pid && !processAlive(pid)) rmSync(join(base, entry), { recursive: true, force: true });
  }
  const dir = join(base, `${process.pid}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}
