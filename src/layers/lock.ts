import { closeSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { processAlive } from '../process/alive.js';

/** How often a waiter looks again at a held lock (contention, not readiness: the holder may be another process). */
const RETRY_MS = 15;

function tryTake(path: string): boolean {
  try {
    const fd = openSync(path, 'wx', 0o644);
    try {
      writeSync(fd, String(process.pid));
    } catch (error) {
      // An empty lock reads as a holder still writing its pid: waiters would wait forever (a full disk fails this write).
      rmSync(path, { force: true });
      throw error;
    } finally {
      closeSync(fd);
    }
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  let holder = NaN;
  try {
    holder = Number(readFileSync(path, 'utf8'));
  } catch {
    return false; // released meanwhile: try again
  }
  // An empty file is a holder between open and write: wait for it.
  if (holder && !processAlive(holder)) {
    // The holder died (SIGKILL): move its lock aside under a unique name so
    // that of two waiters only one breaks it.
    const aside = `${path}.stale.${process.pid}`;
    try {
      renameSync(path, aside);
      // Between our read and our rename another waiter may have broken the
      // lock and taken it: then we moved a live lock; put it back.
      if (Number(readFileSync(aside, 'utf8')) !== holder) linkSync(aside, path);
    } catch {
      // someone else broke it first, or took the lock again meanwhile
    } finally {
      rmSync(aside, { force: true });
    }
  }
  return false;
}

/**
 * Runs `fn` holding a lock file (created with O_EXCL, holding our pid). A
 * lock whose holder died is broken, so a SIGKILLed runner never wedges the
 * store. Reentrant calls from one process must not nest on the same path.
 */
export async function withLock<T>(path: string, fn: () => Promise<T> | T): Promise<T> {
  while (!tryTake(path)) await delay(RETRY_MS);
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
}
