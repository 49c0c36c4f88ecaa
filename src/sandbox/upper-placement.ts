import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SandboxError, setupError } from '../errors.js';
import { helperPath } from '../helper/locate.js';
import { makeScopedDir, plannedScopedDir, processScopedDir, sandboxRunHome } from '../home.js';
import { kernelAtLeast } from '../kernel.js';
import { removeTree } from '../process/sweep.js';
import { warnOnce } from './cgroup.js';
import type { HostDirs } from './copy-fallback.js';
import type { NormalizedOptions } from './options.js';
import { type ProbeResult, probeOverlay } from './overlay-probe.js';

/**
 * Where the sandboxes' writable layers live:
 * - 'tmpfs': the helper's private tmpfs (Linux 6.6+, where tmpfs holds user.* xattrs);
 * - 'disk': a private directory per sandbox under `dir` (below 6.6: ext4, xfs, btrfs hold them);
 * - 'copy': no overlay at all, private copies (no overlayfs in user namespaces, or no place that works).
 */
export type UpperPlacement = { mode: 'tmpfs'; reason: string } | { mode: 'disk'; dir: string; reason: string } | { mode: 'copy'; reason: string };

/** SANDBOX_RUN_OVERLAY: unset or 'auto' probes; the others force a mode ('overlay': tmpfs or disk, never copy). */
const SETTINGS = ['auto', 'tmpfs', 'disk', 'copy', 'overlay'] as const;
type Setting = (typeof SETTINGS)[number];

function setting(env: NodeJS.ProcessEnv): Setting {
  const value = env.SANDBOX_RUN_OVERLAY || 'auto';
  if (!(SETTINGS as readonly string[]).includes(value))
    throw new SandboxError('BAD_OPTIONS', `SANDBOX_RUN_OVERLAY: expected ${SETTINGS.join(', ')}, got '${value}'`);
  return value as Setting;
}

/** The directory under which disk uppers go: on the disk that holds sandbox-run's store. */
export function diskUpperBase(env: NodeJS.ProcessEnv = process.env): string {
  return join(sandboxRunHome(env), 'uppers');
}

/** Errors that say nothing about this machine's overlays (no sandbox could start at all): not remembered. */
const transient = new WeakSet<Error>();

/** A probe that could not even make a sandbox fails the way the sandbox itself would, not as an overlay verdict. */
function checked(result: ProbeResult): ProbeResult {
  if (result.sandboxFailed === undefined) return result;
  const error = setupError(result.sandboxFailed);
  transient.add(error);
  throw error;
}

function probeTmpfs(helper: string): ProbeResult {
  return checked(probeOverlay(helper, mkdtempSync(join(tmpdir(), 'sandbox-run-probe-')), false));
}

function probeDisk(helper: string, env: NodeJS.ProcessEnv): ProbeResult {
  let scratch: string;
  try {
    scratch = processScopedDir('uppers', env);
  } catch (error) {
    return { ok: false, detail: (error as Error).message.split('\n')[0]! };
  }
  return checked(probeOverlay(helper, scratch, true));
}

function unusable(message: string): never {
  throw new SandboxError('SETUP_FAILED', `${message}; run 'sandbox-run doctor'`);
}

function decide(env: NodeJS.ProcessEnv): UpperPlacement {
  const wanted = setting(env);
  if (wanted === 'copy') return { mode: 'copy', reason: 'SANDBOX_RUN_OVERLAY=copy' };
  if (wanted === 'auto' && !kernelAtLeast(5, 11)) return { mode: 'copy', reason: `Linux ${release()} has no overlayfs in user namespaces (5.11+)` };
  const helper = helperPath(env);
  const dir = diskUpperBase(env);
  if (wanted !== 'disk') {
    const tmpfs = probeTmpfs(helper);
    if (tmpfs.ok) return { mode: 'tmpfs', reason: wanted === 'tmpfs' ? 'SANDBOX_RUN_OVERLAY=tmpfs' : `tmpfs holds user.* xattrs (Linux ${release()})` };
    if (wanted === 'tmpfs') unusable(`SANDBOX_RUN_OVERLAY=tmpfs, but copy-on-write on tmpfs is broken here: ${tmpfs.detail}`);
    const disk = probeDisk(helper, env);
    if (disk.ok) return { mode: 'disk', dir, reason: `tmpfs cannot hold overlayfs's user.* xattrs before Linux 6.6 (${tmpfs.detail})` };
    const why = `on tmpfs: ${tmpfs.detail}; on disk at ${dir}: ${disk.detail}`;
    if (wanted === 'overlay') unusable(`SANDBOX_RUN_OVERLAY=overlay, but no copy-on-write overlay works here (${why})`);
    return { mode: 'copy', reason: `no copy-on-write overlay works here (${why})` };
  }
  const disk = probeDisk(helper, env);
  if (!disk.ok) unusable(`SANDBOX_RUN_OVERLAY=disk, but copy-on-write with the upper at ${dir} is broken: ${disk.detail}`);
  return { mode: 'disk', dir, reason: 'SANDBOX_RUN_OVERLAY=disk' };
}

/**
 * What a probe found holds until the kernel, the helper or the home's
 * filesystem changes: the key names all three (boot id: a reboot may bring
 * another kernel build or sysctl).
 */
function diskCacheKey(env: NodeJS.ProcessEnv): string | undefined {
  try {
    const helper = helperPath(env);
    const home = sandboxRunHome(env);
    mkdirSync(home, { recursive: true });
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return [release(), bootId, env.SANDBOX_RUN_OVERLAY || 'auto', helper, statSync(helper).mtimeMs, statSync(home).dev].join(' ');
  } catch {
    return undefined;
  }
}

function readDiskCache(file: string, key: string): UpperPlacement | undefined {
  try {
    const cached = JSON.parse(readFileSync(file, 'utf8')) as { key?: string; placement?: UpperPlacement };
    return cached.key === key ? cached.placement : undefined;
  } catch {
    return undefined;
  }
}

function writeDiskCache(file: string, key: string, placement: UpperPlacement): void {
  try {
    const temp = `${file}.${process.pid}`;
    writeFileSync(temp, `${JSON.stringify({ key, placement })}\n`);
    renameSync(temp, file);
  } catch {
    // a read-only home only costs the next process a probe
  }
}

const cache = new Map<string, UpperPlacement | SandboxError>();

/**
 * This machine's placement, probed once per process (and per setting and
 * home, which tests change) and remembered on disk for this boot, kernel and
 * helper (a probe costs tens of ms): the runner never uses a mode whose
 * probe failed. Failures are not remembered across processes.
 */
export function upperPlacement(env: NodeJS.ProcessEnv = process.env): UpperPlacement {
  const key = `${env.SANDBOX_RUN_OVERLAY ?? ''}\0${sandboxRunHome(env)}\0${env.SANDBOX_RUN_HELPER ?? ''}`;
  let placement = cache.get(key);
  if (!placement) {
    const file = join(sandboxRunHome(env), 'overlay-probe.json');
    const diskKey = diskCacheKey(env);
    placement = diskKey === undefined ? undefined : readDiskCache(file, diskKey);
    if (!placement) {
      try {
        placement = decide(env);
        // Only a working overlay is remembered: a copy verdict may come from a passing cause (a timeout under load).
        if (diskKey !== undefined && placement.mode !== 'copy') writeDiskCache(file, diskKey, placement);
      } catch (error) {
        if (!(error instanceof SandboxError) || transient.has(error)) throw error;
        placement = error;
      }
    }
    cache.set(key, placement);
  }
  if (placement instanceof SandboxError) throw placement;
  return placement;
}

/** Forgets what was probed, in this process and on disk: doctor probes afresh. */
export function forgetUpperPlacement(env: NodeJS.ProcessEnv = process.env): void {
  cache.clear();
  rmSync(join(sandboxRunHome(env), 'overlay-probe.json'), { force: true });
}

/**
 * Plans a private upper and work dir on disk for every overlay that would
 * have its upper on the helper's tmpfs (the copy-on-write workdir, layers
 * mounted without `upper`). Sandboxes cannot see each other's: the base is
 * masked inside. Returns the new options and the host work around the helper.
 * With `only: 'upperOnDisk'` (tmpfs placement) just the overlays that ask for
 * a disk upper get one (reflink copy-up); the rest stay on the tmpfs.
 */
export function planDiskUppers(
  options: NormalizedOptions,
  env: NodeJS.ProcessEnv = process.env,
  only?: 'upperOnDisk',
): { options: NormalizedOptions; hostDirs: HostDirs } {
  const base = diskUpperBase(env);
  if (options.upperSize !== undefined && !only)
    warnOnce(`--upper-size is not enforced: the writable layer is on disk under ${base} (tmpfs cannot hold it before Linux 6.6); see sandbox-run doctor`);
  const dir = plannedScopedDir('uppers', env);
  const layers: string[] = [];
  const upper = () => {
    const layer = join(dir, String(layers.length));
    layers.push(layer);
    return { upper: join(layer, 'upper'), work: join(layer, 'work') };
  };
  // A kept layer (--keep-failed, builds, the Vitest pool) already has its own upper on the host.
  const overlays = options.overlays.map((overlay) => (overlay.upper || (only && !overlay.upperOnDisk) ? overlay : { ...overlay, upper: upper() }));
  const workdirLayer = options.workdir === 'cow' && !only ? (options.workdirLayer ?? upper()) : options.workdirLayer;
  const imageRoot = options.imageRoot && !options.imageRoot.upper && !only ? { ...options.imageRoot, upper: upper() } : options.imageRoot;
  const hostDirs: HostDirs = {
    make() {
      makeScopedDir(dir);
      for (const layer of layers) {
        mkdirSync(join(layer, 'upper'), { recursive: true });
        mkdirSync(join(layer, 'work'));
      }
    },
    remove: () => removeTree(dir),
  };
  return {
    options: { ...options, overlays, ...(workdirLayer ? { workdirLayer } : {}), ...(imageRoot ? { imageRoot } : {}), masks: [...options.masks, base] },
    hostDirs,
  };
}
