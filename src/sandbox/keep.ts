import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { sandboxRunHome } from '../home.js';
import { type KeptLayer, type KeptManifest, type KeptScratch, type KeptService, MANIFEST, writeManifest } from '../kept/manifest.js';
import { enforceCaps, keptDirIn, placeKept, processRunDir } from '../kept/runs.js';
import { removeTree } from '../process/sweep.js';
import { type Service, stopServices } from '../services/service.js';
import { within, workdirMountPoint } from './mounts.js';
import type { SandboxOptions } from './options.js';
import type { Sandbox } from './sandbox.js';
import { looksLikeSecret } from './secrets.js';

/*
 * Keeping a sandbox: it is created `keepable`, with every writable layer
 * (the working directory's, each overlay's: a preset's database too) on
 * disk in a private directory under $SANDBOX_RUN_HOME/keeping, removed when
 * it is disposed. `sb.keep()` instead stops its services in order, copies
 * their logs out, disposes it and moves that directory to runs/ with a
 * manifest (kept.json) from which `sandbox-run open` starts it again.
 */

/** What the caller knows about the sandbox's use that the sandbox does not. */
export interface KeepOptions {
  /** What the kept run is called in listings, e.g. the test file. */
  label?: string;
  /** The command the test ran. */
  command?: readonly string[];
  /** Variables the test's process was given on top of the sandbox's (e.g. a runner's SANDBOX_SHARD). */
  env?: Readonly<Record<string, string | undefined>>;
  status?: string;
  exitCode?: number | null;
  /** Where to keep it (a new directory). Default: $SANDBOX_RUN_HOME/runs/<this process's run>/<name or N>. */
  dir?: string;
  /** The name in the run directory (default 1, 2, ...). */
  name?: string;
  /**
   * Move the caller's own working-directory layer (`workdirLayer`) into the
   * kept run instead of pointing at it, so the caller may remove its
   * directory afterwards. It must be on the same filesystem as $SANDBOX_RUN_HOME.
   */
  adoptWorkdirLayer?: boolean;
}

export interface KeptSandbox {
  dir: string;
  manifest: KeptManifest;
  /** Older kept sandboxes removed to stay within the caps. */
  evicted: string[];
}

/** The upper root takes the lower root's mode (the overlay's root shows the upper's: PostgreSQL insists on 0700). */
function makeLayer(dir: string, lower: string | undefined): { upper: string; work: string } {
  const upper = join(dir, 'upper');
  const work = join(dir, 'work');
  mkdirSync(upper, { recursive: true });
  mkdirSync(work);
  const mode = lower ? statSync(lower, { throwIfNoEntry: false })?.mode : undefined;
  if (mode !== undefined) chmodSync(upper, mode & 0o7777);
  return { upper, work };
}

/** Gives every copy-on-write mount without a host upper one in `pending`/layers/N. */
export function keepableOptions(options: SandboxOptions, pending: string): SandboxOptions {
  let n = 0;
  const cwd = resolve(options.cwd ?? process.cwd());
  const next = (lower: string | undefined) => makeLayer(join(pending, 'layers', String(n++)), lower);
  const workdirLayer = (options.workdir ?? 'cow') === 'cow' && !options.workdirLayer ? next(workdirMountPoint(cwd)) : undefined;
  const overlays = (options.overlays ?? []).map((overlay) => {
    if (overlay.upper) return overlay;
    const top = typeof overlay.lower === 'string' ? overlay.lower : overlay.lower[0];
    return { ...overlay, upper: next(top === undefined ? undefined : resolve(cwd, top)) };
  });
  return { ...options, ...(workdirLayer ? { workdirLayer } : {}), overlays };
}

function serviceSpec(service: Service): KeptService {
  const { name, command, env, cwd, ready, failOnLog, startTimeoutMs, stopSignal, stopGraceMs, exports } = service.spec;
  const source = (pattern: RegExp | string) => (typeof pattern === 'string' ? pattern : pattern.source);
  const probe = ready && 'log' in ready ? { log: source(ready.log) } : ready && 'command' in ready ? { command: [...ready.command] } : ready;
  return {
    name,
    command: [...command],
    ...(env ? { env: { ...env } } : {}),
    ...(cwd ? { cwd } : {}),
    ...(probe ? { ready: probe } : {}),
    ...(failOnLog ? { failOnLog: source(failOnLog) } : {}),
    ...(startTimeoutMs !== undefined ? { startTimeoutMs } : {}),
    ...(stopSignal ? { stopSignal } : {}),
    ...(stopGraceMs !== undefined ? { stopGraceMs } : {}),
    ...(exports ? { exports: { ...exports } } : {}),
  };
}

/** Regular files of a per-sandbox host dir (a CA file beside a socket), copied: sockets and locks are the live server's. */
function copyScratch(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true }))
    if (entry.isFile() && !entry.name.endsWith('.lock')) copyFileSync(join(from, entry.name), join(to, entry.name));
}

/**
 * Keeps `sb` (created keepable, its layers in `pending`): services stopped
 * newest first (PostgreSQL shuts down cleanly, its data files complete),
 * logs and per-sandbox host files copied out while it still lives, then it
 * is disposed and `pending` becomes the kept directory.
 */
export async function keepSandbox(sb: Sandbox, pending: string, options: KeepOptions): Promise<KeptSandbox> {
  await stopServices(sb.services);
  mkdirSync(join(pending, 'logs'), { recursive: true });
  const logs = sb.services.map((service) => {
    const file = join('logs', `${service.spec.name}.log`);
    writeFileSync(join(pending, file), service.log(), { mode: 0o600 });
    return { service: service.spec.name, file };
  });
  const home = resolve(sandboxRunHome());
  const o = sb.options;
  const scratch: KeptScratch[] = o.binds
    .filter((bind) => within(bind.source, home) && statSync(bind.source, { throwIfNoEntry: false })?.isDirectory())
    .map((bind, i) => {
      const copy = join('scratch', String(i));
      copyScratch(bind.source, join(pending, copy));
      return { path: bind.source, kind: relative(home, bind.source).split('/')[0]!, copy };
    });
  const exports = { ...sb.env };
  await sb.dispose();

  const rel = (path: string) => (within(path, pending) ? relative(pending, path) : path);
  const layers: KeptLayer[] = [];
  if (o.workdir === 'cow' && o.workdirLayer) {
    const mount = workdirMountPoint(o.cwd);
    let upper = o.workdirLayer.upper;
    if (options.adoptWorkdirLayer && !within(upper, pending)) {
      const adopted = join(pending, 'layers', 'workdir', 'upper');
      mkdirSync(dirname(adopted), { recursive: true });
      renameSync(upper, adopted); // same filesystem: a rename, nothing copied
      upper = adopted;
    }
    layers.push({ target: mount, lowers: [mount], upper: rel(upper), workdir: true });
  }
  for (const overlay of o.overlays) if (overlay.upper) layers.push({ target: overlay.target, lowers: overlay.lowers, upper: rel(overlay.upper.upper) });
  // A kept layer needs its upper only; overlayfs leaves work/work at mode 000.
  const layerDirs = join(pending, 'layers');
  for (const name of existsSync(layerDirs) ? readdirSync(layerDirs) : []) removeTree(join(layerDirs, name, 'work'));

  const given: Record<string, string | undefined> = { ...o.env, ...options.env };
  const env: Record<string, string> = {};
  const unsetEnv: string[] = [];
  const droppedEnv: string[] = [];
  for (const [name, value] of Object.entries(given)) {
    if (value === undefined) unsetEnv.push(name);
    else if (looksLikeSecret(name, value)) droppedEnv.push(name);
    else env[name] = value;
  }
  const manifest: KeptManifest = {
    version: 2,
    label: options.label ?? '',
    keptAt: new Date().toISOString(),
    ...(options.status ? { status: options.status } : {}),
    ...(options.exitCode !== undefined ? { exitCode: options.exitCode } : {}),
    command: [...(options.command ?? [])],
    cwd: o.cwd,
    sandbox: {
      workdir: o.workdir,
      network: o.network,
      hostname: o.hostname,
      ...(o.uid !== undefined ? { uid: o.uid } : {}),
      ...(o.gid !== undefined ? { gid: o.gid } : {}),
      tmpfs: o.tmpfs,
      binds: o.binds,
      mask: o.masks.filter((path) => !within(path, home)),
      passEnv: o.passEnv,
      inheritEnv: o.inheritEnv,
    },
    layers,
    scratch,
    services: sb.services.map(serviceSpec),
    env,
    unsetEnv,
    exports,
    droppedEnv: droppedEnv.sort(),
    logs,
  };
  writeManifest(pending, manifest);
  const dir = options.dir ?? keptDirIn(processRunDir(), options.name);
  placeKept(pending, dir);
  return { dir, manifest, evicted: enforceCaps(dir) };
}

export { MANIFEST };
