import { createRequire } from 'node:module';
import { SandboxError } from '../errors.js';

/** The overlayfs xattr (with `userxattr`) that makes a directory hide everything below it in lower layers. */
export const OPAQUE_XATTR = 'user.overlay.opaque';

type Binding = typeof import('@napi-rs/xattr');
let binding: Binding | undefined;

/**
 * @napi-rs/xattr, loaded on first use: a platform without its prebuilt
 * binary (an optional dependency) fails only where xattrs are needed, in one line.
 */
function xattr(): Binding {
  if (binding) return binding;
  try {
    binding = createRequire(import.meta.url)('@napi-rs/xattr') as Binding;
    return binding;
  } catch (error) {
    const why = String((error as Error).message).split('\n')[0];
    throw new SandboxError(
      'SETUP_FAILED',
      `cannot load @napi-rs/xattr for ${process.platform}-${process.arch} (${why}): reinstall without --omit=optional (npm install --include=optional)`,
    );
  }
}

/** The binding's errors carry no errno, only "… (os error N)". */
function osError(error: unknown): number | undefined {
  const match = /\(os error (\d+)\)/.exec(String((error as Error).message));
  return match ? Number(match[1]) : undefined;
}

const EOPNOTSUPP = 95;

/**
 * Whether a directory carries `user.overlay.opaque=y`. One llistxattr (and an
 * lgetxattr only when it is there): the binding's get maps every error to
 * "absent", its list does not, and silently missing an opaque mark would
 * resurrect a parent's deleted files. Symlinks are never followed; a
 * filesystem without xattrs has no opaque directories.
 */
export async function isOpaque(dir: string): Promise<boolean> {
  let names: string[];
  try {
    names = await xattr().listAttributes(dir);
  } catch (error) {
    if (error instanceof SandboxError) throw error;
    if (osError(error) === EOPNOTSUPP) return false;
    throw new SandboxError('SETUP_FAILED', `cannot read the extended attributes of ${dir}: ${(error as Error).message}`);
  }
  if (!names.includes(OPAQUE_XATTR)) return false;
  const value = await xattr().getAttribute(dir, OPAQUE_XATTR);
  if (value === null || value === undefined) throw new SandboxError('SETUP_FAILED', `cannot read ${OPAQUE_XATTR} of ${dir}, which lists it`);
  return value.toString('latin1') === 'y';
}

/** Marks a directory opaque, as overlayfs does when a lower directory is removed and made again. */
export async function markOpaque(dir: string): Promise<void> {
  try {
    await xattr().setAttribute(dir, OPAQUE_XATTR, 'y');
  } catch (error) {
    if (error instanceof SandboxError) throw error;
    throw new SandboxError('SETUP_FAILED', `cannot set ${OPAQUE_XATTR} on ${dir}: ${(error as Error).message}`);
  }
}
