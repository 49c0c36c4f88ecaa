import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SandboxError } from '../errors.js';

/** Where `npm install` builds the helper (same depth from src/ and dist/). */
const BUILT_HELPER = fileURLToPath(new URL('../../helper/build/sandbox-helper', import.meta.url));

/**
 * The helper binary: $SANDBOX_RUN_HELPER, else the one built on install.
 * Throws a one-line error with the fix when it is missing.
 */
export function helperPath(env: NodeJS.ProcessEnv = process.env): string {
  const path = env.SANDBOX_RUN_HELPER || BUILT_HELPER;
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new SandboxError(
      'HELPER_MISSING',
      `the sandbox helper ${path} is missing or not executable: run \`npm rebuild sandbox-run\` (needs a C compiler) or set SANDBOX_RUN_HELPER`,
    );
  }
  return path;
}
