import { existsSync, readFileSync } from 'node:fs';
import { release, totalmem } from 'node:os';
import { execa } from 'execa';
import { helperReason } from '../errors.js';
import { helperPath } from '../helper/locate.js';
import { kernelAtLeast } from '../kernel.js';
import { forgetReflinkVerdicts, reflinkVerdict } from '../layers/reflink.js';
import { defaultStoreDir } from '../layers/store.js';
import { findPostgresBindir, serverVersion } from '../presets/postgres/bindir.js';
import { chooseCopyUp, PAGES_VERIFIED } from '../presets/postgres/copy-up.js';
import { availableControllers, cgroup2Mount, cgroupParentSetting, ownCgroup } from '../sandbox/cgroup.js';
import { defaultSizes, formatSize } from '../sandbox/size-budget.js';
import { forgetUpperPlacement, upperPlacement } from '../sandbox/upper-placement.js';
import { layerToolsCheck, postgresCheck } from './tools-check.js';
import { unmappedCheck } from './unmapped-check.js';

export interface DoctorCheck {
  name: string;
  /** 'warn' does not fail doctor: something degrades, nothing breaks. */
  status: 'pass' | 'fail' | 'warn';
  detail: string;
  /** The exact thing to do, for 'fail' and 'warn'. */
  remedy?: string;
}

function readSysctl(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function kernelCheck(): DoctorCheck {
  const ok = kernelAtLeast(5, 12);
  return {
    name: 'kernel',
    status: ok ? 'pass' : 'fail',
    detail: `Linux ${release()} (overlayfs in a user namespace needs 5.11, mount_setattr 5.12)`,
    ...(ok ? {} : { remedy: 'upgrade the kernel to 5.12 or later' }),
  };
}

function userNamespaceChecks(): DoctorCheck[] {
  const checks: DoctorCheck[] = [];
  const max = readSysctl('/proc/sys/user/max_user_namespaces');
  checks.push(
    max === '0'
      ? {
          name: 'user namespaces allowed',
          status: 'fail',
          detail: 'user.max_user_namespaces is 0',
          remedy: 'sudo sysctl -w user.max_user_namespaces=15000 (persist it in /etc/sysctl.d/99-sandbox-run.conf)',
        }
      : { name: 'user namespaces allowed', status: 'pass', detail: `user.max_user_namespaces = ${max ?? 'unknown'}` },
  );
  const clone = readSysctl('/proc/sys/kernel/unprivileged_userns_clone');
  if (clone !== undefined)
    checks.push(
      clone === '0'
        ? {
            name: 'unprivileged user namespaces',
            status: 'fail',
            detail: 'kernel.unprivileged_userns_clone is 0',
            remedy: 'sudo sysctl -w kernel.unprivileged_userns_clone=1',
          }
        : { name: 'unprivileged user namespaces', status: 'pass', detail: 'kernel.unprivileged_userns_clone = 1' },
    );
  const apparmor = readSysctl('/proc/sys/kernel/apparmor_restrict_unprivileged_userns');
  if (apparmor !== undefined)
    checks.push(
      apparmor === '1'
        ? {
            name: 'AppArmor user namespace restriction',
            status: 'warn',
            detail: 'kernel.apparmor_restrict_unprivileged_userns is 1 (Ubuntu 23.10+): unconfined programs lose capabilities in new user namespaces',
            remedy: 'sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or install an AppArmor profile for the helper (README, Troubleshooting)',
          }
        : { name: 'AppArmor user namespace restriction', status: 'pass', detail: 'not restricted' },
    );
  return checks;
}

function containerCheck(): DoctorCheck | undefined {
  const status = readSysctl('/proc/self/status') ?? '';
  const inContainer = existsSync('/.dockerenv') || existsSync('/run/.containerenv') || process.env.KUBERNETES_SERVICE_HOST;
  if (!inContainer) return undefined;
  const seccomp = /^Seccomp:\s*2/m.test(status);
  return {
    name: 'container',
    status: seccomp ? 'warn' : 'pass',
    detail: seccomp ? 'running in a container with a seccomp filter, which usually blocks CLONE_NEWUSER' : 'running in a container',
    remedy:
      'Docker: --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined; ' +
      'Kubernetes: securityContext.seccompProfile.type: Unconfined and procMount: Unmasked (or hostUsers: false)',
  };
}

async function helperCheck(): Promise<{ check: DoctorCheck; helper?: string }> {
  try {
    const helper = helperPath();
    return { check: { name: 'helper', status: 'pass', detail: helper }, helper };
  } catch (error) {
    return {
      check: { name: 'helper', status: 'fail', detail: (error as Error).message, remedy: 'npm rebuild sandbox-run' },
    };
  }
}

async function sandboxStartCheck(helper: string): Promise<DoctorCheck> {
  const result = await execa(helper, ['--', '/bin/sh', '-c', 'exit 0'], { reject: false, timeout: 10_000 });
  if (result.exitCode === 0)
    return { name: 'sandbox starts', status: 'pass', detail: 'user, mount, pid, ipc, uts and network namespaces; read-only root; /proc' };
  const reason = helperReason(String(result.stderr)) || `exit ${result.exitCode}`;
  const remedy = /proc/.test(reason)
    ? 'in a container, /proc is partly masked: run it with --security-opt systempaths=unconfined (Docker) or procMount: Unmasked (Kubernetes)'
    : 'see the failed checks above; in a container see the container check';
  return { name: 'sandbox starts', status: 'fail', detail: reason, remedy };
}

/**
 * Where sandboxes keep their writable layers here, probed afresh (a real
 * overlay in a real sandbox: whiteouts, opaque dirs, renames); the result
 * replaces what the runner had remembered.
 */
function overlayCheck(): DoctorCheck {
  const name = 'overlayfs in a user namespace';
  try {
    forgetUpperPlacement();
    const placement = upperPlacement();
    if (placement.mode === 'tmpfs') return { name, status: 'pass', detail: `copy-on-write, writable layers on tmpfs: ${placement.reason}` };
    if (placement.mode === 'disk')
      return {
        name,
        status: 'pass',
        detail:
          `copy-on-write, writable layers on disk under ${placement.dir} ` +
          `(removed with each sandbox; --upper-size is not enforced there): ${placement.reason}`,
      };
    return {
      name,
      status: 'warn',
      detail: `private copies instead of overlays: ${placement.reason}`,
      remedy: 'copies cost time and disk per sandbox: set SANDBOX_RUN_HOME to a directory on ext4, xfs or btrfs (Linux 5.11+), or use Linux 6.6+',
    };
  } catch (error) {
    return { name, status: 'fail', detail: (error as Error).message, remedy: 'unset SANDBOX_RUN_OVERLAY to let sandbox-run choose' };
  }
}

/**
 * Whether the store's filesystem clones into the disk uppers' directory:
 * then the PostgreSQL preset's data layer copies up by reflink. Never a
 * failure: without clones, copy-up copies.
 */
async function reflinkCheck(): Promise<DoctorCheck> {
  const name = 'reflink copy-up';
  forgetReflinkVerdicts();
  const store = defaultStoreDir();
  const { clones, detail, dir } = await reflinkVerdict(store);
  if (clones) return { name, status: 'pass', detail: `the store (${store}) clones into ${dir}: copy-up of a layer file there costs metadata only` };
  return {
    name,
    status: 'pass',
    detail:
      `the store (${store}) does not clone into ${dir} (${detail}): copy-up copies whole files ` +
      '(with SANDBOX_RUN_HOME on XFS with reflink=1 or on btrfs, it would clone)',
  };
}

/** The copy-up the PostgreSQL preset's default (`copyUp: 'auto'`) gets here, for the server it would find: reflink, pages, lazy-open or overlay. */
async function postgresCopyUpCheck(): Promise<DoctorCheck> {
  let major: number | undefined;
  try {
    major = serverVersion(findPostgresBindir()).major;
  } catch {
    // no server here: the choice for a verified major
  }
  const { mechanism, reason } = await chooseCopyUp('auto', defaultStoreDir(), { major });
  const detail = `${mechanism}${major ? ` (PostgreSQL ${major})` : ''}: ${reason}`;
  if (mechanism === 'reflink' || mechanism === 'pages') return { name: 'postgres copy-up', status: 'pass', detail };
  const remedy = 'run `npm rebuild sandbox-run` (builds helper/build/pg-page-cow.so and pg-lazy-write.so; needs a C compiler)';
  if (mechanism === 'lazy-open')
    return {
      name: 'postgres copy-up',
      status: 'pass',
      detail: `${detail}; a write copies its whole segment file (up to 1 GB) into the sandbox`,
      ...(major !== undefined && PAGES_VERIFIED.includes(major) ? { remedy } : {}),
    };
  return { name: 'postgres copy-up', status: 'warn', detail: `${detail}; a query copies every table it reads into memory`, remedy };
}

/** Which limits this host enforces, and how: the cgroup tells for memory, pids and CPU. */
function limitsCheck(): DoctorCheck {
  // With writable layers on disk (Linux < 6.6) no tmpfs holds them: --upper-size cannot bind.
  const upperOnTmpfs = (() => {
    try {
      return upperPlacement().mode === 'tmpfs';
    } catch {
      return false;
    }
  })();
  const always =
    `tmpfs sizes (${upperOnTmpfs ? '--upper-size, ' : ''}--tmpfs-size), rlimits (--rlimit), timeouts (--timeout), core dumps off` +
    (upperOnTmpfs ? '' : '; NOT enforced: --upper-size (no tmpfs holds the writable layer)');
  const nproc = process.getuid?.() === 0 ? 'not for root: RLIMIT_NPROC exempts uid 0' : 'by RLIMIT_NPROC, counted per sandbox';
  let setting: string | undefined;
  try {
    setting = cgroupParentSetting(undefined);
  } catch (error) {
    return { name: 'resource limits', status: 'fail', detail: (error as Error).message, remedy: 'set SANDBOX_RUN_CGROUP to a cgroup v2 directory or to self' };
  }
  if (!setting)
    return {
      name: 'resource limits',
      status: 'warn',
      detail: `no delegated cgroup v2 subtree (SANDBOX_RUN_CGROUP unset): enforced: ${always}; pids ${nproc}; NOT enforced: --memory, --cpus`,
      remedy:
        'for memory, pids and CPU caps run under a delegated cgroup: systemd-run --user --scope -p Delegate=yes env SANDBOX_RUN_CGROUP=self sandbox-run ...' +
        (cgroup2Mount() ? '' : ' (this host has no cgroup v2 mounted)'),
    };
  const dir = setting === 'self' ? ownCgroup() : setting;
  const offered = dir ? availableControllers(dir) : [];
  const missing = ['memory', 'pids', 'cpu'].filter((name) => !offered.includes(name));
  if (!dir || !existsSync(dir))
    return {
      name: 'resource limits',
      status: 'fail',
      detail: `SANDBOX_RUN_CGROUP=${setting}: no such cgroup directory`,
      remedy: 'create it and give it to your user (chown), or unset SANDBOX_RUN_CGROUP',
    };
  return {
    name: 'resource limits',
    status: missing.length ? 'warn' : 'pass',
    detail: `a cgroup per sandbox under ${dir}; controllers offered: ${offered.join(' ') || 'none'}; enforced also: ${always}`,
    ...(missing.length
      ? {
          remedy:
            `${missing.join(', ')} not offered by ${dir}: enable them in its parent's cgroup.subtree_control ` +
            '(on a hybrid cgroup v1/v2 host they belong to v1 and cannot be used)',
        }
      : {}),
  };
}

/**
 * The isolation a command gets here, observed in a live sandbox as uid 0
 * (the strongest case): its own session, no capability, an empty /run.
 */
async function isolationCheck(helper: string): Promise<DoctorCheck> {
  const name = 'isolation';
  const script = 'cut -d" " -f6 /proc/self/stat; grep -E "^Cap(Eff|Bnd)" /proc/self/status | tr -d "\\t"; ls -A /run | wc -l';
  const result = await execa(helper, ['--uid', '0', '--', '/bin/sh', '-c', script], { reject: false, timeout: 10_000, stdin: 'ignore' });
  const [sid, eff, bnd, run] = String(result.stdout).split('\n');
  const held = sid !== '1' && eff === 'CapEff:0000000000000000' && bnd === 'CapBnd:0000000000000000' && run === '0';
  const lsms = readSysctl('/sys/kernel/security/lsm');
  const landlock =
    lsms === undefined
      ? 'Landlock may or may not be active (securityfs is not mounted), and'
      : /\blandlock\b/.test(lsms)
        ? 'Landlock is active, but'
        : 'Landlock is not active here, and';
  return {
    name,
    status: held ? 'pass' : 'fail',
    detail: held
      ? 'every command in its own session, no capability even as uid 0, a fresh session keyring, a pty of its own instead of your terminal; ' +
        "fresh /run, $XDG_RUNTIME_DIR and sandbox-run's home hidden; unix sockets elsewhere in the read-only host view stay reachable " +
        `(${landlock} its pathname-socket restriction is in no kernel sandbox-run was tested on)`
      : `a sandbox here is not isolated as it should be: ${result.stdout || result.stderr}`,
    ...(held ? {} : { remedy: 'rebuild the helper (npm rebuild sandbox-run) and report this with the output of sandbox-run doctor' }),
  };
}

/** The default tmpfs sizes: half the memory, split between the sandboxes running at once. */
function sizeBudgetCheck(): DoctorCheck {
  const one = defaultSizes(1);
  const perCore = defaultSizes();
  return {
    name: 'default sizes',
    status: 'pass',
    detail:
      `half of ${formatSize(totalmem())} memory for all sandboxes' tmpfs at once: ` +
      `one sandbox gets a ${formatSize(one.upper)} writable layer and ${formatSize(one.tmpfs)} each for /tmp and /dev/shm; ` +
      `with ${perCore.concurrency} at once (--parallel), ${formatSize(perCore.upper)} and ${formatSize(perCore.tmpfs)}; --upper-size and --tmpfs-size override`,
  };
}

/** Runs every check; the live sandbox checks are the ground truth, the rest explain failures. */
export async function runDoctor(options: { cwd?: string } = {}): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [kernelCheck(), ...userNamespaceChecks()];
  const container = containerCheck();
  if (container) checks.push(container);
  const { check, helper } = await helperCheck();
  checks.push(check);
  if (helper) {
    const start = await sandboxStartCheck(helper);
    checks.push(start);
    if (start.status === 'pass') checks.push(overlayCheck(), await reflinkCheck(), await postgresCopyUpCheck(), await isolationCheck(helper));
  }
  checks.push(limitsCheck(), sizeBudgetCheck());
  checks.push(await layerToolsCheck(), postgresCheck());
  if (options.cwd !== undefined) checks.push(unmappedCheck(options.cwd));
  return checks;
}
