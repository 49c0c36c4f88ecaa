// Per-sandbox cgroups under a delegated cgroup v2 subtree. CI delegates one
// to its unprivileged user (SANDBOX_RUN_CGROUP, as systemd's Delegate=yes
// would); as root the test makes its own. Which controllers the subtree
// offers depends on the host: these machines are cgroup v1/v2 hybrids whose
// memory, pids and cpu controllers live on v1, so only placement, clean-up
// and the warnings are checked unconditionally, and each limit where offered.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { run, Sandbox } from '../../src/index.js';
import { availableControllers, cgroup2Mount } from '../../src/sandbox/cgroup.js';
import { CLI, eventually, NODE } from './support.js';

function delegatedParent(): string | undefined {
  if (process.env.SANDBOX_RUN_CGROUP) return process.env.SANDBOX_RUN_CGROUP;
  const mount = cgroup2Mount();
  if (process.getuid!() !== 0 || !mount) return undefined;
  const dir = join(mount, `sandbox-run-test.${process.pid}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

const parent = delegatedParent();
const ownCgroups = () => (parent ? readdirSync(parent).filter((name) => name.startsWith(`sandbox-run.${process.pid}.`)) : []);
const cgroupOf = (text: string) =>
  text
    .split('\n')
    .find((line) => line.startsWith('0::'))
    ?.slice(3);

describe.skipIf(!parent)('cgroup limits (delegated cgroup v2 subtree)', () => {
  afterAll(() => {
    if (!process.env.SANDBOX_RUN_CGROUP && parent) rmdirSync(parent);
  });

  it('starts a sandbox in a cgroup of its own and removes the cgroup afterwards', async () => {
    const result = await run('cat', ['/proc/self/cgroup'], { workdir: 'none', cgroupParent: parent! });
    expect(result.exitCode).toBe(0);
    expect(cgroupOf(result.stdout)).toMatch(new RegExp(`/sandbox-run\\.${process.pid}\\.\\d+/sandbox$`));
    expect(ownCgroups()).toEqual([]);
  });

  it('gets there without clone3 too (kernels before 5.7: the helper moves itself in first)', async () => {
    const result = await run('cat', ['/proc/self/cgroup'], { workdir: 'none', cgroupParent: parent!, env: { SANDBOX_RUN_NO_CLONE3: '1' } });
    expect(cgroupOf(result.stdout)).toMatch(new RegExp(`/sandbox-run\\.${process.pid}\\.\\d+/sandbox$`));
    expect(ownCgroups()).toEqual([]);
  });

  it('puts joined processes in the sandbox cgroup too, writes the limits, and removes it at dispose', async () => {
    const offered = availableControllers(parent!);
    const sb = await Sandbox.create({ workdir: 'none', cgroupParent: parent!, pids: 64, ...(offered.includes('memory') ? { memory: '64m' } : {}) });
    try {
      const [dir] = ownCgroups();
      expect(dir).toBeDefined();
      const path = join(parent!, dir!);
      // Processes live in a leaf below the cgroup that holds the limits.
      expect(readFileSync(join(path, 'sandbox', 'cgroup.procs'), 'utf8').split('\n')).toContain(String(sb.pid));
      const joined = await sb.exec('cat', ['/proc/self/cgroup']);
      expect(cgroupOf(joined.stdout)?.endsWith(`/${dir}/sandbox`)).toBe(true);
      if (offered.includes('pids')) expect(readFileSync(join(path, 'pids.max'), 'utf8').trim()).toBe('64');
      if (offered.includes('memory')) expect(readFileSync(join(path, 'memory.max'), 'utf8').trim()).toBe(String(64 * 2 ** 20));
      // Without the pids controller the limit is still held by RLIMIT_NPROC (per sandbox, not for root).
      const limits = await sb.exec('grep', ['Max processes', '/proc/self/limits']);
      expect(limits.stdout).toMatch(/Max processes\s+64\s+64/);
    } finally {
      await sb.dispose();
    }
    expect(ownCgroups()).toEqual([]);
  });

  it('names a limit the subtree cannot enforce, once, and still runs', async () => {
    const missing = ['memory', 'cpu'].find((name) => !availableControllers(parent!).includes(name));
    const flag = missing === 'memory' ? ['--memory', '64m'] : ['--cpus', '1'];
    const result = await execa(NODE, [CLI, '--workdir', 'none', '--cgroup-parent', parent!, ...flag, '--', 'true'], { reject: false });
    expect(result.exitCode).toBe(0);
    if (missing)
      expect(result.stderr).toBe(
        `sandbox-run: warning: the ${missing === 'cpu' ? 'cpus' : missing} limit is not enforced: cgroup ${parent} offers no '${missing}' controller ` +
          `(it offers: ${availableControllers(parent!).join(' ') || 'none'}); see sandbox-run doctor`,
      );
    else expect(result.stderr).toBe('');
  });

  it("'self': the runner moves into a leaf of its own cgroup and makes the sandboxes' cgroups beside it", async () => {
    // In a child process: moving cgroups is for the whole process, and 'self' rewrites its environment.
    const script = `import { readFileSync } from 'node:fs';
      import { run } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).pathname)};
      const result = await run('cat', ['/proc/self/cgroup'], { workdir: 'none', cgroupParent: 'self' });
      const own = (text) => text.split('\\n').find((line) => line.startsWith('0::')).slice(3);
      console.log(JSON.stringify({
        sandbox: own(result.stdout),
        runner: own(readFileSync('/proc/self/cgroup', 'utf8')),
        env: process.env.SANDBOX_RUN_CGROUP,
      }));`;
    const child = execa(NODE, ['--input-type=module', '-e', script], { env: { SANDBOX_RUN_CGROUP: undefined }, extendEnv: true });
    const { sandbox, runner, env } = JSON.parse((await child).stdout) as { sandbox: string; runner: string; env: string };
    const own = cgroupOf(readFileSync('/proc/self/cgroup', 'utf8'))!;
    expect(runner).toBe(`${own === '/' ? '' : own}/sandbox-run-runner.${child.pid}`);
    expect(sandbox).toMatch(new RegExp(`^${own === '/' ? '' : own}/sandbox-run\\.${child.pid}\\.0/sandbox$`));
    expect(env).toBe(join(cgroup2Mount()!, own));
    // The runner's leaf outlives it (a process cannot remove its own cgroup); the next start sweeps it.
    rmdirSync(join(cgroup2Mount()!, runner));
  });

  it('refuses a cgroup parent that does not exist with one line', async () => {
    const result = await execa(NODE, [CLI, '--cgroup-parent', '/sys/fs/cgroup/no-such-cgroup', '--', 'true'], { reject: false });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toBe('sandbox-run: cgroup parent /sys/fs/cgroup/no-such-cgroup does not exist: create and delegate it, or unset SANDBOX_RUN_CGROUP');
  });

  it('sweeps the empty cgroups of a runner killed with SIGKILL at the next start', async () => {
    const script = `import { Sandbox } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).pathname)};
      const sb = await Sandbox.create({ workdir: 'none', cgroupParent: ${JSON.stringify(parent)} });
      console.log(sb.pid); setInterval(() => {}, 1000);`;
    const child = execa(NODE, ['--input-type=module', '-e', script], { reject: false, buffer: false, stdout: 'pipe' });
    await new Promise((resolve) => child.stdout!.once('data', resolve));
    const leftover = readdirSync(parent!).find((name) => name.startsWith(`sandbox-run.${child.pid}.`));
    expect(leftover).toBeDefined();
    child.kill('SIGKILL');
    await child;
    const events = join(parent!, leftover!, 'cgroup.events');
    await eventually(() => readFileSync(events, 'utf8').includes('populated 0'), 1000, 'the killed runner’s sandbox to die');
    // Its processes die with it (parent-death signal); the empty directory goes with the next sandbox.
    await run('true', [], { workdir: 'none', cgroupParent: parent! });
    expect(existsSync(join(parent!, leftover!))).toBe(false);
  });
});
