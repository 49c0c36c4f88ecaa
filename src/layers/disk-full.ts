import { statfsSync } from 'node:fs';
import { SandboxError } from '../errors.js';

/** How a full disk or an exhausted quota shows: an errno code, or its text in a message or a command's output. */
const FULL = /\b(ENOSPC|EDQUOT)\b|no space left on device|disk quota exceeded/i;

/** Whether `error` (or the output it carries) says the disk is full. */
export function isDiskFull(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  const { code, message, stderr } = error as { code?: unknown; message?: unknown; stderr?: unknown };
  return [code, message, stderr].some((text) => typeof text === 'string' && FULL.test(text));
}

/** The one line every layer write says when the store's disk is full. */
export function diskFullError(storeDir: string): SandboxError {
  return new SandboxError('DISK_FULL', `no space left on ${storeDir} while writing a layer: free space (sandbox-run prune) or use --store on a bigger disk`);
}

/** Runs a write into the store; a full disk becomes {@link diskFullError}, other errors pass as they are. */
export async function orDiskFull<T>(storeDir: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw isDiskFull(error) ? diskFullError(storeDir) : error;
  }
}

/** Below this many free bytes, a command's "No space left on device" is taken to be about the store. */
const NEARLY_FULL = 16 << 20;

/** Whether a command's output blames a full disk and the store's filesystem is indeed (nearly) full. */
export function outputSaysStoreFull(storeDir: string, output: string): boolean {
  if (!FULL.test(output)) return false;
  try {
    const fs = statfsSync(storeDir);
    return fs.bavail * fs.bsize < NEARLY_FULL;
  } catch {
    return false;
  }
}
