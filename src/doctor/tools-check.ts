import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { checkLayerTools } from '../layers/requirements.js';
import { defaultStoreDir } from '../layers/store.js';
import { findPostgresBindir } from '../presets/postgres.js';
import type { DoctorCheck } from './checks.js';

/** The nearest existing directory at or above `path`: where the store is, or will be made. */
function existingAncestor(path: string): string {
  let dir = path;
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** Layers need user xattrs on the store's filesystem, @napi-rs/xattr's binary, and coreutils' mknod. */
export async function layerToolsCheck(): Promise<DoctorCheck> {
  const base = existingAncestor(defaultStoreDir());
  try {
    return { name: 'layer tools', status: 'pass', detail: await checkLayerTools(base) };
  } catch (error) {
    return {
      name: 'layer tools',
      status: 'fail',
      detail: (error as Error).message,
      remedy:
        `layers need user xattrs where the store lives (${base}; ext4, xfs, btrfs, tmpfs 6.6+), ` +
        "@napi-rs/xattr's prebuilt binary (npm install --include=optional) and mknod (coreutils)",
    };
  }
}

/** Only the PostgreSQL preset needs the server binaries: their absence degrades, it breaks nothing else. */
export function postgresCheck(): DoctorCheck {
  try {
    return { name: 'PostgreSQL server', status: 'pass', detail: findPostgresBindir() };
  } catch (error) {
    return {
      name: 'PostgreSQL server',
      status: 'warn',
      detail: `${(error as Error).message} (needed by the postgres preset only)`,
      remedy: 'apt-get install postgresql',
    };
  }
}
