import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { MANIFEST, readManifest } from './manifest.js';

/**
 * The layers `sandbox-run diff KEPT` compares, for a kept sandbox whose
 * manifest (version 2) lists them; undefined for anything else (a bare
 * upper dir, a layer, a version-1 kept working directory), which diff
 * handles as before.
 */
export function keptDiff(path: string): { target: string; lowers: string[]; upper: string }[] | undefined {
  const file = join(path, MANIFEST);
  if (!existsSync(file)) return undefined;
  try {
    if ((JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version !== 2) return undefined;
  } catch {
    return undefined;
  }
  return readManifest(path).layers.map((layer) => ({
    target: layer.target === '/' ? '' : layer.target,
    lowers: layer.lowers,
    upper: isAbsolute(layer.upper) ? layer.upper : join(path, layer.upper),
  }));
}
