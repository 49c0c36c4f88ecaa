import { rmSync } from 'node:fs';
import { SandboxError } from '../../errors.js';
import { processScopedDir } from '../../home.js';

/** sun_path holds 108 bytes with its NUL: servers refuse a longer socket path. */
const SUN_PATH_MAX = 107;

/**
 * A host directory for one sandbox's server socket, bound into the sandbox
 * at the same path, so one path reaches the server inside and from the
 * host. Removed by the caller's cleanup; a dead runner's by the next one.
 */
export function socketDir(preset: string, socketName: string): string {
  const dir = processScopedDir('sockets');
  if (`${dir}/${socketName}`.length > SUN_PATH_MAX) {
    rmSync(dir, { recursive: true, force: true });
    throw new SandboxError(
      'SETUP_FAILED',
      `${preset} preset: socket path under ${dir} is too long for a unix socket; set SANDBOX_RUN_HOME to a shorter directory`,
    );
  }
  return dir;
}
