import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { glob } from 'tinyglobby';
import { SandboxError } from '../../errors.js';

// Files a preset's options name (seed files, inputs), read on the host:
// their content goes into the cache key and into the build.

export const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** Reads a file the preset was given, or fails with one line naming it and how it was resolved. */
export function readPresetInput(preset: string, what: string, file: string, baseDir: string): Buffer {
  const path = resolve(baseDir, file);
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory, not a file' : code === 'EACCES' ? 'not readable' : (error as Error).message;
    const from = isAbsolute(file) ? '' : ` (relative to ${baseDir})`;
    throw new SandboxError('BAD_OPTIONS', `${preset} preset: ${what} ${path}: ${why}${from}; fix the path`);
  }
}

/**
 * `[relative path, sha256]` of every file `inputs` names (files,
 * directories, globs, as `sandbox-run build --input`), sorted. An entry
 * that matches nothing is an error: a typo would freeze the cache.
 */
export async function hashInputs(preset: string, inputs: readonly string[], baseDir: string): Promise<[string, string][]> {
  const files = new Set<string>();
  for (const input of inputs) {
    // tinyglobby wants patterns relative to its cwd; an absolute one becomes ../-relative.
    const pattern = isAbsolute(input) ? relative(baseDir, input) || '.' : input;
    const found = await glob([pattern], { cwd: baseDir, dot: true, onlyFiles: true, absolute: true });
    if (!found.length)
      throw new SandboxError('BAD_OPTIONS', `${preset} preset: seed.inputs '${input}' matches no file (relative to ${baseDir}); fix the path or the glob`);
    for (const file of found) files.add(file);
  }
  return [...files].sort().map((file) => [relative(baseDir, file), sha256(readPresetInput(preset, 'seed.inputs', file, baseDir))]);
}
