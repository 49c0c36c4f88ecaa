import { lstatSync } from 'node:fs';
import { join, posix } from 'node:path';
import { imageStack } from '../../layers/image-stack.js';
import type { ImageConfig } from '../../layers/oci-index.js';

// A preset's server from an image in the layer store: the image is mounted
// in the build sandbox and in every sandbox at `at`, and the server (and its
// own tools) run chrooted into it, on the sandbox's localhost and /tmp.

/** Docker's PATH for an image whose config sets none. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface PresetImage {
  ref: string;
  /** The top layer's digest: what the cache key holds instead of a version. */
  digest: string;
  /** Where it is mounted in each sandbox (under /run: a fresh tmpfs). */
  at: string;
  lowers: string[];
  config: ImageConfig | undefined;
}

/** Image `ref` from the store (one line naming pull and import if it is not there), to mount at /run/images/<name>. */
export function presetImage(ref: string, name: string, storeDir?: string): PresetImage {
  const stack = imageStack(ref, ...(storeDir ? [storeDir] : []));
  return { ref, digest: stack.digest, at: `/run/images/${name}`, lowers: stack.lowers, config: stack.config };
}

/** Whether `path` exists in the merged view of the layers (top first): the top layer that has it decides; a whiteout hides it. */
function inLayers(lowers: readonly string[], path: string): boolean {
  for (const lower of lowers) {
    const st = lstatSync(join(lower, path), { throwIfNoEntry: false });
    if (st) return !(st.isCharacterDevice() && st.rdev === 0);
  }
  return false;
}

/** The first of `names` on the image's PATH (its Env's, else Docker's default), as a path inside the image. */
export function findInImage(image: PresetImage, names: readonly string[], extraDirs: readonly string[] = []): string | undefined {
  const env = image.config?.Env?.find((entry) => entry.startsWith('PATH='));
  const dirs = [...(env ? env.slice(5) : DEFAULT_PATH).split(':').filter((dir) => posix.isAbsolute(dir)), ...extraDirs];
  for (const name of names) for (const dir of dirs) if (inLayers(image.lowers, posix.join(dir, name))) return posix.join(dir, name);
  return undefined;
}

/**
 * The binds that make a host socket directory reach a server chrooted into
 * the image: at its own path in the sandbox (for clients there and on the
 * host) and at the same path inside the image mount.
 */
export function socketBinds(sockets: string, image: PresetImage | undefined): { source: string; target?: string }[] {
  return image ? [{ source: sockets }, { source: sockets, target: posix.join(image.at, sockets) }] : [{ source: sockets }];
}
