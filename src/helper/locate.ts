import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SandboxError } from '../errors.js';

/** Where `npm install` builds the helper (same depth from src/ and dist/). */
const BUILT_HELPER = fileURLToPath(new URL('../../helper/build/sandbox-helper', import.meta.url));
const BUILD_SCRIPT = fileURLToPath(new URL('../../helper/build.mjs', import.meta.url));

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

let built = false;

/**
 * The helper binary: $SANDBOX_RUN_HELPER, else the one built on install.
 * npm 11 skips dependencies' install scripts unless approved, so a missing
 * build is attempted once here before giving up with the fix.
 */
export function helperPath(env: NodeJS.ProcessEnv = process.env): string {
  const path = env.SANDBOX_RUN_HELPER || BUILT_HELPER;
  if (executable(path)) return path;
  if (!env.SANDBOX_RUN_HELPER && !built) {
    built = true;
    spawnSync(process.execPath, [BUILD_SCRIPT], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (executable(path)) return path;
  }
  throw new SandboxError(
    'HELPER_MISSING',
    `the sandbox helper ${path} is missing or not executable: run \`npm rebuild sandbox-run\` (needs a C compiler), or set SANDBOX_RUN_HELPER`,
  );
}
