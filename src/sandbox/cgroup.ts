import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import { sweepDeadOwners } from '../process/sweep.js';
import { warnOnce } from '../warnings.js';

export { warnOnce };

/**
 * Per-sandbox resource limits through a delegated cgroup v2 subtree: each
 * sandbox gets its own child cgroup, the helper starts the sandbox inside it
 * with clone3(CLONE_INTO_CGROUP), and it is killed and removed afterwards.
 */

/** Limits after normalisation: bytes, a process count, cores. */
export interface ResourceLimits {
  memory?: number;
  pids?: number;
  cpus?: number;
  /** The pids limit is the default, not asked for: no warning where it cannot be enforced (RLIMIT_NPROC still applies). */
  pidsIsDefault?: boolean;
}

/** What a finished sandbox's cgroup recorded. */
export interface CgroupReport {
  /** Processes the kernel's OOM killer ended because of the memory limit. */
  oomKills: number;
}

export interface SandboxCgroup {
  /** The cgroup holding the sandbox's limits. */
  readonly path: string;
  /** Its leaf, where the sandbox's processes live (passed to the helper as --cgroup). */
  readonly leaf: string;
  /** Kills what is left, reads the OOM count and removes the directory. */
  release(): Promise<CgroupReport>;
}

const CONTROLLER: Record<'memory' | 'pids' | 'cpus', string> = { memory: 'memory', pids: 'pids', cpus: 'cpu' };
const OWN_NAME = /^sandbox-run\.(\d+)\.\d+$/;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Where cgroup v2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts). */
export function cgroup2Mount(mountinfo = read('/proc/self/mountinfo') ?? ''): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (right?.split(' ')[0] === 'cgroup2') return left!.split(' ')[4];
  }
  return undefined;
}

/** This process's own cgroup v2 directory. */
export function ownCgroup(): string | undefined {
  const mount = cgroup2Mount();
  const line = read('/proc/self/cgroup')
    ?.split('\n')
    .find((entry) => entry.startsWith('0::'));
  return mount && line ? join(mount, line.slice(3)) : undefined;
}

/** The cgroup delegated to sandbox-run, from the option or $SANDBOX_RUN_CGROUP ('self': the one we run in). */
export function cgroupParentSetting(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = option ?? env.SANDBOX_RUN_CGROUP;
  if (!value) return undefined;
  if (value !== 'self' && !value.startsWith('/'))
    throw new SandboxError('BAD_OPTIONS', `cgroup parent '${value}': expected an absolute cgroup v2 directory or 'self'`);
  return value;
}

/** Controllers a cgroup offers its children. */
export function availableControllers(dir: string): string[] {
  return (read(join(dir, 'cgroup.controllers')) ?? '').trim().split(/\s+/).filter(Boolean);
}

/**
 * 'self' means the cgroup this process was started in (e.g. by
 * `systemd-run --user --scope -p Delegate=yes`). cgroup v2 lets only leaves
 * hold processes once controllers are enabled, so we move into a leaf of our
 * own first; children inherit the resolved path through the environment.
 */
let resolvedSelf: string | undefined;
function resolveParent(setting: string): string {
  if (setting !== 'self') return setting;
  // Once per process: after the move, our own cgroup is the leaf.
  if (resolvedSelf) return resolvedSelf;
  const own = ownCgroup();
  if (!own) throw new SandboxError('SETUP_FAILED', 'SANDBOX_RUN_CGROUP=self: this process is not in a cgroup v2 hierarchy');
  const leaf = join(own, `sandbox-run-runner.${process.pid}`);
  try {
    mkdirSync(leaf, { recursive: true });
    writeFileSync(join(leaf, 'cgroup.procs'), `${process.pid}\n`);
  } catch (error) {
    throw new SandboxError(
      'SETUP_FAILED',
      `SANDBOX_RUN_CGROUP=self: cannot move into ${leaf} (${(error as NodeJS.ErrnoException).code}): ` +
        `is ${own} delegated to you? (systemd-run --user --scope -p Delegate=yes)`,
    );
  }
  process.env.SANDBOX_RUN_CGROUP = own;
  resolvedSelf = own;
  return own;
}

/** Empty cgroups left by runners that were killed (SIGKILL gives no chance to clean up). */
function sweep(parent: string): void {
  const owner = (name: string) => Number((OWN_NAME.exec(name) ?? /^sandbox-run-runner\.(\d+)$/.exec(name))?.[1]);
  sweepDeadOwners(parent, owner, (dir) => {
    try {
      if (existsSync(join(dir, 'sandbox'))) rmdirSync(join(dir, 'sandbox'));
      rmdirSync(dir);
    } catch {
      // still populated or already gone: not ours to force
    }
  });
}

/** Turns on the controllers the limits need in the parent's subtree; returns the limits that can be enforced. */
function enableControllers(parent: string, limits: ResourceLimits): ResourceLimits {
  const available = availableControllers(parent);
  const enabled = new Set((read(join(parent, 'cgroup.subtree_control')) ?? '').trim().split(/\s+/));
  const enforced: ResourceLimits = {};
  for (const key of ['memory', 'pids', 'cpus'] as const) {
    const controller = CONTROLLER[key];
    if (limits[key] === undefined) continue;
    if (!available.includes(controller)) {
      if (key === 'pids' && limits.pidsIsDefault) continue;
      warnOnce(
        `the ${key} limit is not enforced: cgroup ${parent} offers no '${controller}' controller ` +
          `(it offers: ${available.join(' ') || 'none'}); see sandbox-run doctor`,
      );
      continue;
    }
    if (!enabled.has(controller)) {
      try {
        writeFileSync(join(parent, 'cgroup.subtree_control'), `+${controller}\n`);
      } catch (error) {
        throw new SandboxError(
          'SETUP_FAILED',
          `cannot enable the ${controller} controller in ${parent} (${(error as NodeJS.ErrnoException).code}): ` +
            'the cgroup must have no processes of its own; use SANDBOX_RUN_CGROUP=self to move the runner into a leaf',
        );
      }
    }
    enforced[key] = limits[key];
  }
  return enforced;
}

let sequence = 0;

/** Where a sandbox's cgroup will be, and what it will hold: the first half of createSandboxCgroup, for launch plans. */
export interface CgroupPlan {
  parent: string;
  path: string;
  /** Where the sandbox's processes live (the helper's --cgroup). */
  leaf: string;
  limits: ResourceLimits;
}

export function planSandboxCgroup(setting: string, limits: ResourceLimits): CgroupPlan {
  const parent = resolveParent(setting);
  const path = join(parent, `sandbox-run.${process.pid}.${sequence++}`);
  return { parent, path, leaf: join(path, 'sandbox'), limits };
}

/**
 * Creates the sandbox's cgroup under `setting` with the limits written in.
 * The processes go into a leaf below it: a sandboxed process that makes a
 * cgroup namespace and mounts cgroup2 (possible from a nested user
 * namespace) sees its own cgroup as the root, so the limits one level up,
 * in files owned by the same user, stay out of its reach.
 */
export function createSandboxCgroup(plan: CgroupPlan): SandboxCgroup {
  const { parent, path, leaf, limits } = plan;
  if (!statSync(parent, { throwIfNoEntry: false })?.isDirectory())
    throw new SandboxError('BAD_OPTIONS', `cgroup parent ${parent} does not exist: create and delegate it, or unset SANDBOX_RUN_CGROUP`);
  sweep(parent);
  const enforced = enableControllers(parent, limits);
  try {
    mkdirSync(path);
  } catch (error) {
    throw new SandboxError(
      'SETUP_FAILED',
      `cannot create a cgroup in ${parent} (${(error as NodeJS.ErrnoException).code}): it must be delegated to you (owned by your user)`,
    );
  }
  try {
    if (enforced.memory !== undefined) {
      writeFileSync(join(path, 'memory.max'), `${enforced.memory}\n`);
      // Swap would let a memory hog go on slowly instead of failing.
      if (existsSync(join(path, 'memory.swap.max'))) writeFileSync(join(path, 'memory.swap.max'), '0\n');
      // One OOM kill ends the whole sandbox, like a crashed test process would.
      if (existsSync(join(path, 'memory.oom.group'))) writeFileSync(join(path, 'memory.oom.group'), '1\n');
    }
    if (enforced.pids !== undefined) writeFileSync(join(path, 'pids.max'), `${enforced.pids}\n`);
    if (enforced.cpus !== undefined) writeFileSync(join(path, 'cpu.max'), `${Math.max(1000, Math.round(enforced.cpus * 100_000))} 100000\n`);
    mkdirSync(leaf);
  } catch (error) {
    rmdirSync(path);
    throw new SandboxError('SETUP_FAILED', `cannot write limits in ${path}: ${(error as Error).message}`);
  }
  return { path, leaf, release: () => releaseCgroup(path, leaf) };
}

function populated(path: string): boolean {
  return /^populated 1$/m.test(read(join(path, 'cgroup.events')) ?? '');
}

async function releaseCgroup(path: string, leaf: string): Promise<CgroupReport> {
  const oomKills = Number(/^oom_kill (\d+)$/m.exec(read(join(path, 'memory.events')) ?? '')?.[1] ?? 0);
  // Processes that joined the sandbox die with its pid namespace; cgroup.kill
  // (Linux 5.14) also ends any that escaped into it some other way.
  if (populated(path) && existsSync(join(path, 'cgroup.kill'))) writeFileSync(join(path, 'cgroup.kill'), '1\n');
  const deadline = Date.now() + 5000;
  while (populated(path) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  try {
    rmdirSync(leaf);
    rmdirSync(path);
  } catch {
    // a next run's sweep removes it once it is empty
  }
  return { oomKills };
}
