import { SandboxError } from '../errors.js';

/** A size as people write it: 1048576, '64m', '2G', '512MiB'. The config schema and the parser share it. */
export const SIZE_PATTERN = /^(\d+)\s*([kmgt]?)i?b?$/i;
const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Parses a size such as 1048576, '64m' or '2G' into bytes. */
export function parseSize(value: number | string, what: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value;
  const match = SIZE_PATTERN.exec(String(value).trim());
  const bytes = match ? Number(match[1]) * (UNITS[match[2]!.toLowerCase()] ?? 1) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new SandboxError('BAD_OPTIONS', `${what}: expected a size such as 512m or 2g, got '${value}'`);
  return bytes;
}
