import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { removeTree } from '../../src/process/sweep.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'dist/cli/main.js');
export const HELPERS = {
  plain: join(ROOT, 'helper/build/sandbox-helper'),
  sanitized: join(ROOT, 'helper/build/sandbox-helper-sanitized'),
} as const;
export const NODE = process.execPath;
/** The uid a sandbox runs as for the current caller. */
export const INSIDE_UID = process.getuid!() === 0 ? 65534 : process.getuid!();

/** A temporary directory removed by the returned function. */
export function tempDir(prefix = 'sandbox-run-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  // removeTree opens up read-only directories first (a layer may hold some), which rmSync cannot remove as non-root.
  return { path, remove: () => removeTree(path) };
}

/** A digest of a whole tree: paths, types, modes, link targets and contents. */
export function treeDigest(dir: string): string {
  const hash = createHash('sha256');
  const walk = (path: string, rel: string) => {
    const st = lstatSync(path);
    hash.update(`${rel}\0${st.mode}\0${st.size}\0`);
    if (st.isSymbolicLink()) hash.update(readlinkSync(path));
    else if (st.isFile()) hash.update(readFileSync(path));
    else if (st.isDirectory()) for (const name of readdirSync(path).sort()) walk(join(path, name), `${rel}/${name}`);
  };
  walk(dir, '.');
  return hash.digest('hex');
}

/** Host pids whose command line contains `marker`. */
export function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

export function mountCount(): number {
  return readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n').length;
}

/** Polls `condition` until it holds or `ms` pass: readiness by observation, not by sleeping. */
export async function eventually(condition: () => boolean, ms = 2000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A private $SANDBOX_RUN_HOME for the calling test file, set before its tests and removed after them. */
export function useTempHome(): { path: string } {
  const home = tempDir('sandbox-run-home-');
  beforeAll(() => {
    process.env.SANDBOX_RUN_HOME = home.path;
  });
  afterAll(() => {
    delete process.env.SANDBOX_RUN_HOME;
    home.remove();
  });
  return home;
}

/**
 * Compiles a C fixture (test/fixtures/NAME.c) once into test/fixtures/build,
 * which sandboxes see through the read-only host view. cc is one of the
 * README's requirements (the helper needs it).
 */
export function buildFixture(name: string): string {
  const out = join(ROOT, 'test/fixtures/build', name);
  const source = join(ROOT, 'test/fixtures', `${name}.c`);
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(source).mtimeMs) return out;
  mkdirSync(dirname(out), { recursive: true });
  const temporary = `${out}.${process.pid}`;
  execFileSync('cc', ['-std=gnu11', '-O1', '-Wall', '-o', temporary, source], { stdio: 'inherit' });
  renameSync(temporary, out); // atomic: test files compile it at the same time
  return out;
}
