#!/usr/bin/env node
// Builds the C helper with the system compiler. Runs on `npm install` (also
// when sandbox-run is installed from a tarball into another project), so it
// uses nothing but Node itself.
//
//   node helper/build.mjs              -> helper/build/sandbox-helper
//   node helper/build.mjs --sanitize   -> helper/build/sandbox-helper-sanitized (ASan + UBSan)
// Both also build the PostgreSQL preset's preload library, helper/build/pg-lazy-write.so
// (--sanitize: pg-lazy-write-sanitized.so, UBSan only: ASan must come first in a process, and the server is not built with it).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, 'sandbox-helper.c');
const outDir = join(here, 'build');
const sanitize = process.argv.includes('--sanitize');
const output = join(outDir, sanitize ? 'sandbox-helper-sanitized' : 'sandbox-helper');

if (process.platform !== 'linux') {
  console.warn('sandbox-run: the helper only builds on Linux; skipping (sandboxes will not start here).');
  process.exit(0);
}

const warnings = ['-Wall', '-Wextra', '-Werror', '-Wshadow', '-Wformat=2', '-Wno-format-nonliteral'];
const common = ['-std=gnu11', '-O2', ...warnings, '-o', `${output}.tmp`, source];
// Static linking saves the dynamic loader's work on every sandbox start
// (about 0.3 ms); fall back to a dynamic binary where libc.a is missing.
const attempts = sanitize
  ? [['-g', '-fno-omit-frame-pointer', '-fsanitize=address,undefined', '-fno-sanitize-recover=all', ...common]]
  : [
      ['-static', '-D_FORTIFY_SOURCE=2', ...common],
      ['-D_FORTIFY_SOURCE=2', ...common],
    ];

const compiler = [process.env.CC, 'cc', 'gcc', 'clang'].find((cc) => cc && spawnSync(cc, ['--version'], { stdio: 'ignore' }).status === 0);
if (!compiler) {
  console.error(
    'sandbox-run: no C compiler found (tried $CC, cc, gcc, clang): ' +
      'install one, e.g. `apt-get install gcc` or `dnf install gcc`, then run `npm rebuild sandbox-run`.',
  );
  process.exit(1);
}

mkdirSync(outDir, { recursive: true });
let last;
for (const args of attempts) {
  last = spawnSync(compiler, args, { encoding: 'utf8' });
  if (last.status === 0) {
    renameSync(`${output}.tmp`, output);
    process.exit(buildPreloadLibrary());
  }
}
console.error(`sandbox-run: building the helper with ${compiler} failed:\n${last.stderr || last.error}`);
if (existsSync(`${output}.tmp`)) renameSync(`${output}.tmp`, `${output}.failed`);
process.exit(1);

/**
 * pg-lazy-write.so: opens files read-only until the first write (see the source). Without it the PostgreSQL preset
 * falls back to plain overlay copy-up, so a failure here warns and leaves the install (and the helper) standing.
 */
function buildPreloadLibrary() {
  const library = join(outDir, sanitize ? 'pg-lazy-write-sanitized.so' : 'pg-lazy-write.so');
  const checks = sanitize ? ['-g', '-fno-omit-frame-pointer', '-fsanitize=undefined', '-fno-sanitize-recover=all'] : [];
  const shared = ['-fPIC', '-shared', '-fvisibility=hidden'];
  const args = ['-std=gnu11', '-O2', ...shared, ...warnings, ...checks, '-o', `${library}.tmp`, join(here, 'pg-lazy-write.c'), '-ldl'];
  const result = spawnSync(compiler, args, { encoding: 'utf8' });
  if (result.status === 0) {
    renameSync(`${library}.tmp`, library);
    return buildPageCowLibrary(checks, shared);
  }
  console.warn(
    `sandbox-run: building ${library} with ${compiler} failed (the postgres preset copies files up whole without it):\n${result.stderr || result.error}`,
  );
  return 0;
}

/** pg-page-cow.so: page-level copy-on-write for relation files (copyUp 'pages', preloaded before pg-lazy-write.so). */
function buildPageCowLibrary(checks, shared) {
  const library = join(outDir, sanitize ? 'pg-page-cow-sanitized.so' : 'pg-page-cow.so');
  const args = ['-std=gnu11', '-O2', ...shared, ...warnings, ...checks, '-o', `${library}.tmp`, join(here, 'pg-page-cow.c'), '-ldl'];
  const result = spawnSync(compiler, args, { encoding: 'utf8' });
  if (result.status === 0) {
    renameSync(`${library}.tmp`, library);
    return 0;
  }
  console.warn(`sandbox-run: building ${library} with ${compiler} failed (copyUp 'pages' is unavailable without it):\n${result.stderr || result.error}`);
  return 0;
}
