import { release } from 'node:os';

const [MAJOR = 0, MINOR = 0] = release()
  .split('.')
  .map((part) => parseInt(part, 10));

/** Whether the running kernel is at least `major.minor` (feature checks: overlayfs in userns, per-userns RLIMIT_NPROC). */
export function kernelAtLeast(major: number, minor: number): boolean {
  return MAJOR > major || (MAJOR === major && MINOR >= minor);
}
