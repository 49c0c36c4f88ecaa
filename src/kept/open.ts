import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { processScopedDir } from '../home.js';
import { removeTree } from '../process/sweep.js';
import type { CreateSandboxOptions } from '../sandbox/create.js';
import type { OverlayMount } from '../sandbox/options.js';
import type { ServiceSpec } from '../services/types.js';
import { type KeptManifest, readManifest } from './manifest.js';

/*
 * `sandbox-run open KEPT`: a sandbox on exactly the kept state. Each kept
 * upper becomes the top lower of a fresh copy-on-write overlay, so what the
 * opened sandbox does is thrown away and every open sees the same state;
 * with `rw` the kept uppers are written to.
 */

export interface OpenPlan {
  manifest: KeptManifest;
  options: CreateSandboxOptions;
  /** Variables for the command (the test's own and its services'). */
  env: Record<string, string | undefined>;
  /** Removes this open's fresh per-sandbox host dirs. */
  cleanup: () => void;
}

/** Replaces every mention of the old per-sandbox dirs (also URL-encoded, as in DATABASE_URL). */
function relocator(moves: [string, string][]): <T>(value: T) => T {
  const swap = (text: string) => moves.reduce((t, [from, to]) => t.split(from).join(to).split(encodeURIComponent(from)).join(encodeURIComponent(to)), text);
  const walk = (value: unknown): unknown => {
    if (typeof value === 'string') return swap(value);
    if (Array.isArray(value)) return value.map(walk);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]));
    return value;
  };
  return <T>(value: T) => walk(value) as T;
}

export function planOpen(dir: string, options: { rw?: boolean; services?: boolean } = {}): OpenPlan {
  const kept = resolve(dir);
  const manifest = readManifest(kept);
  const upperOf = (upper: string) => (isAbsolute(upper) ? upper : join(kept, upper));
  for (const layer of manifest.layers) {
    if (!existsSync(upperOf(layer.upper)))
      throw new Error(`${kept}: its layer for ${layer.target} (${upperOf(layer.upper)}) is gone; the kept run is incomplete, remove it with sandbox-run prune`);
    for (const lower of layer.lowers)
      if (!existsSync(lower))
        throw new Error(`${kept}: ${layer.target} was a layer over ${lower}, which is gone (a pruned or rebuilt layer); the state cannot be opened without it`);
  }
  // Fresh per-sandbox host dirs (the socket directory) with the kept files in them.
  const fresh: string[] = [];
  const moves: [string, string][] = manifest.scratch.map((scratch) => {
    const to = processScopedDir(scratch.kind);
    fresh.push(to);
    const from = join(kept, scratch.copy);
    if (existsSync(from)) for (const name of readdirSync(from)) copyFileSync(join(from, name), join(to, name));
    return [scratch.path, to];
  });
  const relocate = relocator(moves);
  const cleanup = () => fresh.forEach((path) => removeTree(path));

  const workdirLayer = manifest.layers.find((layer) => layer.workdir);
  const overlays: OverlayMount[] = [];
  for (const layer of manifest.layers) {
    const upper = upperOf(layer.upper);
    if (options.rw) {
      const work = join(upper, '..', 'work');
      mkdirSync(work, { recursive: true });
      if (!layer.workdir) overlays.push({ lower: layer.lowers, target: layer.target, upper: { upper, work } });
    } else {
      // The kept upper's whiteouts and opaque marks work in a lower as in an upper.
      overlays.push({ lower: [upper, ...layer.lowers], target: layer.target });
    }
  }
  const rwWorkdir =
    options.rw && workdirLayer ? { workdirLayer: { upper: upperOf(workdirLayer.upper), work: join(upperOf(workdirLayer.upper), '..', 'work') } } : {};
  const s = manifest.sandbox;
  const cwd = existsSync(manifest.cwd) && statSync(manifest.cwd).isDirectory() ? manifest.cwd : '/';
  const services = options.services === false ? [] : (relocate(manifest.services) as ServiceSpec[]);
  const sandbox: CreateSandboxOptions = {
    cwd,
    // Copy-on-write opening mounts the kept working directory as an overlay of its own, over a read-only view.
    workdir: workdirLayer && !options.rw ? 'none' : s.workdir,
    ...rwWorkdir,
    overlays,
    ...(s.network ? { network: s.network } : {}),
    ...(s.hostname ? { hostname: s.hostname } : {}),
    ...(s.uid !== undefined ? { uid: s.uid } : {}),
    ...(s.gid !== undefined ? { gid: s.gid } : {}),
    tmpfs: s.tmpfs ?? [],
    binds: relocate(s.binds ?? []).filter((bind) => existsSync(bind.source)),
    mask: s.mask ?? [],
    passEnv: s.passEnv ?? [],
    inheritEnv: s.inheritEnv ?? true,
    services,
  };
  const env: Record<string, string | undefined> = {
    ...relocate(manifest.exports),
    ...relocate(manifest.env),
    ...Object.fromEntries(manifest.unsetEnv.map((name) => [name, undefined])),
    SANDBOX_RUN_KEPT: kept,
  };
  return { manifest, options: sandbox, env, cleanup };
}
