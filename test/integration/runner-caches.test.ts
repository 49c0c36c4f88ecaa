// Test-runner caches shared across a run's sandboxes and kept between runs: the built CLI, real sandboxes.
// Jest's default cacheDirectory is computed inside the sandbox exactly as jest-config does.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, NODE, tempDir } from './support.js';

const home = tempDir('sandbox-run-home-');
afterAll(() => home.remove());
const cli = (args: string[], cwd: string) => execa(NODE, [CLI, ...args], { cwd, reject: false, env: { SANDBOX_RUN_HOME: home.path, CI: '1' } });

const JEST_DIR = `d=$("${NODE}" -p "require('path').join(require('fs').realpathSync(require('os').tmpdir()), 'jest_' + process.getuid().toString(36))")`;
/** Writes its marker into Jest's cache, then waits for the other's: passes only if both sandboxes share it at once. */
const writer = (mine: string, theirs: string) =>
  `${JEST_DIR}\necho x > "$d/${mine}"\nfor i in $(seq 100); do test -e "$d/${theirs}" && exit 0; sleep 0.1; done\nexit 1\n`;

function project() {
  const dir = tempDir();
  writeFileSync(join(dir.path, 'package.json'), '{}');
  writeFileSync(join(dir.path, 'w-a.sh'), writer('from-a', 'from-b'));
  writeFileSync(join(dir.path, 'w-b.sh'), writer('from-b', 'from-a'));
  writeFileSync(join(dir.path, 'check.sh'), `${JEST_DIR}\ntest -e "$d/from-a" && test -e "$d/from-b"\n`);
  // sandbox-run's home (and so every project's cache) is hidden from the sandbox.
  writeFileSync(join(dir.path, 'home.sh'), `test -z "$(ls -A "${home.path}" 2>/dev/null)"\n`);
  return dir;
}
const run = (glob: string, cwd: string, ...extra: string[]) =>
  cli(['--each', glob, '--parallel', '2', '--no-timings', '--output', 'quiet', ...extra, '--', 'sh', '{}'], cwd);

describe('shared caches', () => {
  it("shares Jest's cache between a run's sandboxes, keeps it for the next run, and not for another project", async () => {
    const a = project();
    const b = project();
    try {
      const first = await run('w-*.sh', a.path);
      expect(first.exitCode, first.stdout + first.stderr).toBe(0);
      expect((await run('check.sh', a.path)).exitCode).toBe(0);
      // Opted out, by flag or config: a fresh /tmp, nothing seen.
      expect((await run('check.sh', a.path, '--no-shared-caches')).exitCode).toBe(1);
      writeFileSync(join(a.path, 'sandbox.config.json'), JSON.stringify({ sharedCaches: false }));
      expect((await run('check.sh', a.path)).exitCode).toBe(1);
      // Another project has a cache of its own, and cannot reach the first one's.
      expect((await run('check.sh', b.path)).exitCode).toBe(1);
      expect((await run('home.sh', b.path)).exitCode).toBe(0);
    } finally {
      a.remove();
      b.remove();
    }
  }, 60_000);
});
