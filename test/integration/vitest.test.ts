import { cpSync, existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { INSIDE_UID, NODE, processesWith, ROOT, tempDir } from './support.js';

const VITEST = join(ROOT, 'node_modules/vitest/vitest.mjs');
const FIXTURES = join(ROOT, 'test/fixtures');

/** Runs the Vitest CLI on a fixture project, as a user would, without this run's VITEST_* variables. */
async function vitest(root: string, args: string[] = [], env: Record<string, string> = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(VITEST|TEST$|NODE_ENV$)/.test(key)));
  const result = await execa(NODE, [VITEST, 'run', '--root', root, ...args], {
    cwd: root,
    env: { ...clean, NO_COLOR: '1', FORCE_COLOR: '0', CI: '1', ...env },
    extendEnv: false,
    reject: false,
    all: true,
    timeout: 150_000,
  });
  return { exitCode: result.exitCode, output: result.all };
}

interface Probe {
  file: string;
  mnt: string;
  uidMap: string;
  sandbox?: string;
  worker?: string;
  sawOthers: string[];
  layer?: string | null;
  secret: string | null;
  capBnd?: string;
}

function probes(output: string): Probe[] {
  return [...output.matchAll(/^PROBE (.*)$/gm)].map((match) => JSON.parse(match[1]!) as Probe);
}

const upper = tempDir('sandbox-run-vitest-test-');
afterAll(() => upper.remove());

// Each test runs the Vitest CLI once or more: generous time on loaded CI machines.
describe('sandboxPool', { timeout: 150_000 }, () => {
  const basic = join(FIXTURES, 'vitest-basic');

  it('runs each test file in its own sandbox and leaves nothing behind', async () => {
    const shared = tempDir('sandbox-run-vitest-shared-');
    const layer = tempDir('sandbox-run-vitest-layer-');
    writeFileSync(join(layer.path, 'hello.txt'), 'from the layer');
    try {
      const { exitCode, output } = await vitest(basic, ['--maxWorkers', '4'], {
        SBX_UPPER_ROOT: upper.path,
        SBX_SHARED: shared.path,
        SBX_LAYER_DIR: layer.path,
        SBX_PROBE_TOKEN: 'ghp_secret',
      });
      expect(exitCode, output).toBe(0);
      const seen = probes(output);
      expect(seen).toHaveLength(4);
      // Workers get the filtered environment every sandbox gets, and no capability.
      expect(seen.map((probe) => [probe.secret, probe.capBnd])).toEqual(Array(4).fill([null, '0000000000000000']));
      expect(output).toMatch(/not passed into the sandbox .*SBX_PROBE_TOKEN/);
      // Four mount namespaces alive at once (they met in the shared directory), none the host's.
      expect(readdirSync(shared.path).sort()).toEqual(['1', '2', '3', '4']);
      expect(new Set(seen.map((probe) => probe.mnt)).size).toBe(4);
      expect(seen.map((probe) => probe.mnt)).not.toContain(readlinkSync('/proc/self/ns/mnt'));
      expect(seen.map((probe) => readFileSync(join(shared.path, probe.file), 'utf8'))).toEqual(seen.map((probe) => probe.mnt));
      checkIsolated(seen);
      // Every file saw the pristine layer although each one changed it.
      expect(seen.map((probe) => probe.layer)).toEqual(['from the layer', 'from the layer', 'from the layer', 'from the layer']);
      expect(readFileSync(join(layer.path, 'hello.txt'), 'utf8')).toBe('from the layer');
    } finally {
      shared.remove();
      layer.remove();
    }
    expect(readdirSync(basic).filter((name) => name.startsWith('written-'))).toEqual([]);
    expect(readdirSync(upper.path)).toEqual([]);
    expect(processesWith(upper.path)).toEqual([]);
  });

  it('gives files run one after another fresh sandboxes too', async () => {
    const { exitCode, output } = await vitest(basic, ['--maxWorkers', '1'], { SBX_UPPER_ROOT: upper.path });
    expect(exitCode, output).toBe(0);
    const seen = probes(output);
    expect(seen).toHaveLength(4);
    checkIsolated(seen);
    expect(readdirSync(upper.path)).toEqual([]);
  });

  it('keeps writable layers on disk where sandboxes do (Linux < 6.6; forced here), and removes them', async () => {
    const home = tempDir('sandbox-run-vitest-home-');
    try {
      const { exitCode, output } = await vitest(basic, ['--maxWorkers', '2'], { SANDBOX_RUN_OVERLAY: 'disk', SANDBOX_RUN_HOME: home.path });
      expect(exitCode, output).toBe(0);
      checkIsolated(probes(output));
      expect(readdirSync(join(home.path, 'uppers'))).toEqual([]);
    } finally {
      home.remove();
    }
  });

  function checkIsolated(seen: Probe[]): void {
    expect(new Set(seen.map((probe) => probe.worker)).size).toBe(4);
    for (const probe of seen) {
      expect(probe.uidMap.split('\n')).toHaveLength(1);
      expect(probe.uidMap.split(/\s+/)).toEqual([String(INSIDE_UID), String(process.getuid!()), '1']);
      expect(probe.sandbox).toBe('1');
      // No file saw another file's writes, in the project or in /tmp.
      expect(probe.sawOthers).toEqual([]);
    }
  }

  it("reuses a worker's sandbox with isolate: false", async () => {
    const { exitCode, output } = await vitest(basic, ['--maxWorkers', '1'], { SBX_ISOLATE: '0', SBX_UPPER_ROOT: upper.path });
    expect(exitCode, output).toBe(0);
    const seen = probes(output);
    expect(new Set(seen.map((probe) => probe.mnt)).size).toBe(1);
    // Files sharing a sandbox share its files too: that is what isolate: false means.
    expect(seen.map((probe) => probe.sawOthers.length)).toEqual([0, 1, 2, 3]);
    expect(readdirSync(upper.path)).toEqual([]);
  });

  it('writes snapshots back to the host, and nothing else', async () => {
    const project = join(FIXTURES, `vitest-snapshot-run-${process.pid}`);
    cpSync(join(FIXTURES, 'vitest-snapshot'), project, { recursive: true });
    try {
      const written = await vitest(project, ['-u']);
      expect(written.exitCode, written.output).toBe(0);
      expect(written.output).toMatch(/Snapshots\s+1 written/);
      const snapshot = readFileSync(join(project, '__snapshots__/snap.test.ts.snap'), 'utf8');
      expect(snapshot).toContain('"greeting": "hello"');
      expect(existsSync(join(project, 'scratch.txt'))).toBe(false);

      // The written snapshot is what the next run compares with.
      const mismatch = await vitest(project, [], { SNAPSHOT_GREETING: 'bye' });
      expect(mismatch.exitCode).toBe(1);
      expect(mismatch.output).toMatch(/Snapshot `matches its snapshot 1` mismatched/);

      // Deletions reach the host too (a whiteout in the sandbox's writable layer).
      const removed = await vitest(project, ['-u'], { SNAPSHOT_NONE: '1' });
      expect(removed.exitCode, removed.output).toBe(0);
      expect(removed.output).toMatch(/1 files? removed/);
      expect(existsSync(join(project, '__snapshots__/snap.test.ts.snap'))).toBe(false);
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });

  it('fails the run with the normal report when a test fails or times out', async () => {
    const { exitCode, output } = await vitest(join(FIXTURES, 'vitest-failing'), [], { SBX_UPPER_ROOT: upper.path });
    expect(exitCode).toBe(1);
    expect(output).toContain('FAIL  fails.test.ts > adds wrongly');
    expect(output).toContain('AssertionError: expected 2 to be 3');
    expect(output).toContain('FAIL  times-out.test.ts > never finishes');
    expect(output).toContain('Error: Test timed out in 1000ms.');
    expect(output).toMatch(/Test Files\s+2 failed \| 1 passed \(3\)/);
    expect(readdirSync(upper.path)).toEqual([]);
  });

  it('stops at the first failure with --bail, with the same summary as forks', async () => {
    const args = ['--bail', '1', '--maxWorkers', '1'];
    const env = { SBX_UPPER_ROOT: upper.path };
    const sandboxed = await vitest(join(FIXTURES, 'vitest-failing'), args, env);
    const forks = await vitest(join(FIXTURES, 'vitest-failing'), [...args, '--pool', 'forks'], env);
    const summary = (output: string) => output.match(/^\s*(Test Files|Tests)\s.*$/gm)?.map((line) => line.trim());
    expect(sandboxed.exitCode).toBe(1);
    expect(forks.exitCode).toBe(1);
    expect(summary(sandboxed.output)).toEqual(summary(forks.output));
    expect(summary(sandboxed.output)).toEqual(['Test Files  1 failed (3)', 'Tests  1 failed (1)']);
    expect(readdirSync(upper.path)).toEqual([]);
  });

  it('fails a file whose sandbox cannot start with the reason, without hanging', async () => {
    const started = Date.now();
    const { exitCode, output } = await vitest(basic, [], { SBX_BAD: '/no/such/dir', SBX_UPPER_ROOT: upper.path });
    expect(exitCode).toBe(1);
    expect(output).toMatch(/Failed to start sandbox worker for test files .*probe-1\.test\.ts/);
    expect(output).toContain("bind source '/no/such/dir' does not exist");
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(readdirSync(upper.path)).toEqual([]);
  });

  it("fails a file whose service never becomes ready with the service's log tail", async () => {
    const { exitCode, output } = await vitest(join(FIXTURES, 'vitest-service'), [], { SBX_UPPER_ROOT: upper.path });
    expect(exitCode).toBe(1);
    expect(output).toMatch(/Failed to start sandbox worker for test files .*never-runs\.test\.ts/);
    expect(output).toContain('service postgres exited with code 2 before it was ready; last lines of');
    expect(output).toContain('could not access directory "/tmp/no-cluster-here"');
    expect(output).not.toContain('this file must not run');
  });

  it('gives watch-mode re-runs fresh sandboxes', async () => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(VITEST|TEST$|NODE_ENV$)/.test(key)));
    const result = await execa(NODE, [join(basic, 'watch-twice.mjs')], {
      cwd: basic,
      env: { ...clean, SBX_UPPER_ROOT: upper.path },
      extendEnv: false,
      reject: false,
      timeout: 60_000,
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const { failed, logs } = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { failed: number; logs: string[] };
    expect(failed).toBe(0);
    const seen = probes(logs.join(''));
    expect(seen).toHaveLength(8);
    // The re-run's files did not see the first run's writes: new sandboxes, not reused ones.
    expect(new Set(seen.map((probe) => probe.worker)).size).toBe(8);
    for (const probe of seen) expect(probe.sawOthers).toEqual([]);
    expect(readdirSync(upper.path)).toEqual([]);
  });

  it('shards and reports like forks', async () => {
    const out = tempDir('sandbox-run-vitest-report-');
    try {
      const report = join(out.path, 'report.json');
      const blob = join(out.path, 'blob.json');
      const args = ['--shard', '2/2', '--reporter', 'json', '--reporter', 'blob', `--outputFile.json=${report}`, `--outputFile.blob=${blob}`];
      const { exitCode, output } = await vitest(basic, args);
      expect(exitCode, output).toBe(0);
      const json = JSON.parse(readFileSync(report, 'utf8')) as { numTotalTestSuites: number; testResults: { name: string }[] };
      expect(json.testResults).toHaveLength(2);
      // The blob reporter's file, for --merge-reports across shards.
      expect(existsSync(blob)).toBe(true);
    } finally {
      out.remove();
    }
  });

  it('runs the PostgreSQL example green, each file with its own database; plain forks on one database are red', async () => {
    const example = join(ROOT, 'examples/vitest-postgres');
    const sandboxed = await vitest(example);
    expect(sandboxed.exitCode, sandboxed.output).toBe(0);
    expect(sandboxed.output).toMatch(/Test Files\s+40 passed \(40\)/);
    const shared = await vitest(example, [], { PG_MODE: 'shared' });
    expect(shared.exitCode).toBe(1);
    expect(shared.output).toMatch(/Test Files\s+\d+ failed/);
  }, 180_000);
});
