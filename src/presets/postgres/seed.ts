import { readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { glob } from 'tinyglobby';
import { SandboxError } from '../../errors.js';

/** Reads a file the preset was given, or fails with one line naming it and how it was resolved. */
export function readInput(what: string, file: string, baseDir: string): Buffer {
  const path = resolve(baseDir, file);
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory, not a file' : code === 'EACCES' ? 'not readable' : (error as Error).message;
    const from = isAbsolute(file) ? '' : ` (relative to ${baseDir})`;
    throw new SandboxError('BAD_OPTIONS', `postgres preset: ${what} ${path}: ${why}${from}; fix the path`);
  }
}

/**
 * The files `inputs` name, absolute and sorted: each entry is a file, a
 * directory (all files below it) or a glob, resolved against `baseDir` like
 * `sandbox-run build --input` (tinyglobby expands a directory to its files).
 * An entry that matches nothing is an error: a typo would freeze the cache.
 */
export async function expandInputs(inputs: readonly string[], baseDir: string): Promise<string[]> {
  const files = new Set<string>();
  for (const input of inputs) {
    // tinyglobby wants patterns relative to its cwd; an absolute one becomes ../-relative.
    const pattern = isAbsolute(input) ? relative(baseDir, input) || '.' : input;
    const found = await glob([pattern], { cwd: baseDir, dot: true, onlyFiles: true, absolute: true });
    if (!found.length)
      throw new SandboxError('BAD_OPTIONS', `postgres preset: seed.inputs '${input}' matches no file (relative to ${baseDir}); fix the path or the glob`);
    for (const file of found) files.add(file);
  }
  return [...files].sort();
}
