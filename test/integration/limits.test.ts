// Resource limits without cgroups (tmpfs sizes, rlimits) and leaks over many
// sandboxes: one misbehaving sandbox must not stop the others, and nothing
// may accumulate.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../../src/index.js';
import { CLI, mountCount, NODE, tempDir } from './support.js';

describe('limits', () => {
  const project = tempDir();
  afterAll(() => project.remove());

  // Host root is exempt from RLIMIT_NPROC, and without a pids cgroup
  // controller nothing would contain the bomb: it runs for other users only
  // (CI's unprivileged pass).
  const bomb = process.getuid!() !== 0;

  it(`a disk filler, a memory hog${bomb ? ' and a fork bomb' : ''} fail alone, with the fix named; the others pass`, async () => {
    writeFileSync(join(project.path, 'disk-filler.sh'), 'dd if=/dev/zero of=/tmp/fill bs=1M count=64');
    writeFileSync(join(project.path, 'memory-hog.sh'), 'head -c 1073741824 /dev/zero | tail > /dev/null');
    // The classic bomb: every process starts two more and exits. exec keeps the
    // script alive without forking until --timeout ends the whole sandbox.
    if (bomb) writeFileSync(join(project.path, 'fork-bomb.sh'), 'b() { b | b & }; b; exec sleep 60');
    // The others fork thousands of times meanwhile; one failed fork fails them.
    const forker = 'end=$(($(date +%s) + 3)); while [ "$(date +%s)" -lt "$end" ]; do /bin/true; done; echo fine > /tmp/x && cat /tmp/x';
    for (const name of ['ok-1.sh', 'ok-2.sh']) writeFileSync(join(project.path, name), forker);
    const json = join(project.path, 'summary.json');
    const result = await execa(
      NODE,
      [
        CLI,
        '--each',
        '*.sh',
        '--parallel',
        '5',
        '--tmpfs-size',
        '16m',
        '--upper-size',
        '16m',
        '--rlimit',
        'as=268435456',
        '--pids',
        '256',
        '--timeout',
        '8s',
        '--json',
        json,
        '--',
        'sh',
        '{}',
      ],
      { cwd: project.path, reject: false, env: { CI: '1' } },
    );
    expect(result.exitCode).toBe(1);
    const summary = JSON.parse(readFileSync(json, 'utf8')) as { results: { label: string; status: string; error?: string }[] };
    const byLabel = Object.fromEntries(summary.results.map((r) => [r.label, r]));
    expect(byLabel['ok-1.sh']!.status).toBe('passed');
    expect(byLabel['ok-2.sh']!.status).toBe('passed');
    expect(byLabel['disk-filler.sh']).toMatchObject({
      status: 'failed',
      error: "no space in the sandbox's writable layer (16 MiB) or /tmp (16 MiB): raise --upper-size or --tmpfs-size",
    });
    expect(byLabel['memory-hog.sh']!.status).toBe('failed');
    // Timed out, or failed when its own script could not fork any more: either way, alone.
    if (bomb) expect(['timed out', 'failed']).toContain(byLabel['fork-bomb.sh']!.status);
  });

  it('1,000 sandboxes in a row leave no growth in mounts, processes, file descriptors or memory', async () => {
    const ownProcesses = () =>
      readdirSync('/proc').filter((entry) => {
        if (!/^\d+$/.test(entry)) return false;
        try {
          return readFileSync(`/proc/${entry}/status`, 'utf8').includes(`\nPPid:\t${process.pid}\n`);
        } catch {
          return false;
        }
      }).length;
    const fds = () => readdirSync('/proc/self/fd').length;
    const warm = async (n: number) => {
      for (let i = 0; i < n; i += 4) await Promise.all([0, 1, 2, 3].map(() => run('/bin/true', [], { workdir: 'none', stdio: 'ignore' })));
    };
    await warm(40);
    const before = { mounts: mountCount(), children: ownProcesses(), fds: fds(), rss: process.memoryUsage().rss };
    await warm(1000);
    globalThis.gc?.();
    const after = { mounts: mountCount(), children: ownProcesses(), fds: fds(), rss: process.memoryUsage().rss };
    expect(after.mounts).toBe(before.mounts);
    expect(after.children).toBe(0);
    expect(after.fds).toBeLessThanOrEqual(before.fds);
    expect(after.rss - before.rss).toBeLessThan(64 * 2 ** 20);
  });
});
