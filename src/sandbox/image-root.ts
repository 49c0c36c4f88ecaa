import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, posix } from 'node:path';
import { SandboxError } from '../errors.js';
import { sandboxRunHome } from '../home.js';
import { imageStack } from '../layers/image-stack.js';
import type { ImageConfig } from '../layers/oci-index.js';
import { ownedName, ownerPid, removeTree, sweepDeadOwners } from '../process/sweep.js';
import type { IdentityOptions } from './identity.js';
import type { NormalizedOptions, SandboxOptions } from './options.js';

/*
 * Images from the layer store as filesystems for sandboxed processes:
 *
 * - `image: 'postgres:16'` (`--image`): the whole sandbox's root is the
 *   image, copy-on-write, instead of the host's read-only root (the helper's
 *   --image-root). The working directory, binds and overlays are mounted
 *   into it as into the host root; /tmp, /dev and /proc are fresh.
 * - `images: [{ ref: 'redis:7', at: '/run/images/redis' }]`: an image
 *   mounted copy-on-write at a path of an ordinary sandbox, with the
 *   sandbox's own /dev, /proc and /tmp bound into it, for processes started
 *   with `root: '/run/images/redis'` (`sb.spawn/exec`, `ServiceSpec.root`):
 *   they chroot into it and share the sandbox's network, so a server there
 *   listens on the sandbox's own localhost. Presets add them through
 *   `PresetParts.images`.
 *
 * Either way the image gets a generated layer on top of its own (never
 * written into the store): /etc/passwd and /etc/group from the image's own
 * files plus an entry for the uid/gid the sandbox runs as (initdb, ssh, id
 * and many more refuse to run without one) with a home directory that
 * exists, /etc/hosts with localhost, and the image's WorkingDir if the image
 * lacks it. The layer is content-addressed under
 * $SANDBOX_RUN_HOME/image-etc and shared by every sandbox that needs the
 * same files.
 */

/** An image as a sandbox mounts it. */
export interface ImageView {
  /** The reference as given. */
  ref: string;
  /** Host directories, top first: the generated /etc layer, then the image's layers. */
  lowers: string[];
  /** The image's Env, with HOME, USER and LOGNAME of the inside user (and a default PATH where the image sets none). */
  env: Record<string, string>;
  /** Where processes start when nothing else says: the image's WorkingDir, else '/'. */
  workingDir: string;
  /** The image's config as imported (Entrypoint, Cmd, ExposedPorts, ...). */
  config?: ImageConfig;
  /** The root's writable layer on the host (disk placement); else the helper's private tmpfs. */
  upper?: { upper: string; work: string };
}

/** An image mounted at a path of a sandbox, for processes started with `root: at`. */
export interface ImageMount {
  at: string;
  view: ImageView;
}

/** What the helper binds from the sandbox's own view into each image mount. */
export const IMAGE_MOUNT_INSIDE = ['/dev', '/proc', '/tmp'] as const;

/** Docker's PATH for an image whose config sets none. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function bad(message: string): never {
  throw new SandboxError('BAD_OPTIONS', message);
}

/**
 * A path of the image's merged view as a host file, or undefined: the top
 * layer that has it decides (a whiteout or a non-directory on the way hides
 * it). Symlinks are reported, never followed: they mean the image's root,
 * not the host's. (Opaque directories are not read: a lower layer's file
 * under one may show through here.)
 */
function lookup(lowers: readonly string[], path: string): { file: string; dir: boolean; link: boolean } | undefined {
  const parts = path.split('/').filter(Boolean);
  // Paths from the image's own files (a passwd home) must stay inside its layers.
  if (parts.some((part) => part === '..' || part === '.')) return undefined;
  for (const lower of lowers) {
    let at = lower;
    for (const [i, part] of parts.entries()) {
      at = join(at, part);
      const st = lstatSync(at, { throwIfNoEntry: false });
      if (!st) break; // not in this layer: the next one down may have it
      if (st.isCharacterDevice() && st.rdev === 0) return undefined; // whiteout
      if (i === parts.length - 1)
        return st.isFile() || st.isDirectory() || st.isSymbolicLink() ? { file: at, dir: st.isDirectory(), link: st.isSymbolicLink() } : undefined;
      if (!st.isDirectory()) return undefined;
    }
  }
  return undefined;
}

function readImageFile(lowers: readonly string[], path: string): string {
  const found = lookup(lowers, path);
  return found && !found.dir && !found.link ? readFileSync(found.file, 'utf8') : '';
}

const NAME = /^[a-z_][a-z0-9_.-]{0,31}$/i;

interface Account {
  name: string;
  home: string;
  passwd: string;
  group: string;
  /** Directories the generated layer must hold (the home, WorkingDir), relative. */
  dirs: string[];
}

/** The inside uid/gid, as the helper picks them: the caller's, 65534 for root. */
export function insideIds(identity: Pick<IdentityOptions, 'uid' | 'gid'>): { uid: number; gid: number } {
  const caller = process.getuid?.() ?? 65534;
  return {
    uid: identity.uid ?? (caller === 0 ? 65534 : caller),
    gid: identity.gid ?? (caller === 0 ? 65534 : (process.getgid?.() ?? 65534)),
  };
}

function callerName(): string | undefined {
  try {
    const name = userInfo().username;
    return NAME.test(name) ? name : undefined;
  } catch {
    return undefined;
  }
}

/**
 * /etc/passwd and /etc/group for the view: the image's lines, and the
 * inside user's. An image entry for the uid is kept (`postgres` for 999 in
 * the postgres image, `nobody` for 65534), its home replaced by /home/NAME
 * if the image has no such directory; otherwise the caller's user name
 * (else `sandbox`) is added with home /home/NAME.
 */
function account(lowers: readonly string[], uid: number, gid: number): Account {
  const passwdText = readImageFile(lowers, '/etc/passwd');
  const groupText = readImageFile(lowers, '/etc/group');
  const lines = (text: string) => text.split('\n').filter((line) => line && !line.startsWith('#'));
  const passwd = lines(passwdText).map((line) => line.split(':'));
  const groups = lines(groupText).map((line) => line.split(':'));
  const taken = new Set([...passwd.map((f) => f[0]), ...groups.map((f) => f[0])]);
  const shell = lookup(lowers, '/bin/sh') ? '/bin/sh' : '/sbin/nologin';
  const dirs: string[] = [];
  // The name may come from the image's passwd: only a plain one names a directory we make.
  const homeFor = (name: string) => {
    const dir = NAME.test(name) ? name : 'sandbox';
    dirs.push(`home/${dir}`);
    return `/home/${dir}`;
  };
  let name: string;
  let home: string;
  const own = passwd.find((f) => f.length >= 7 && f[2] === String(uid));
  if (own) {
    name = own[0]!;
    home = own[5] && lookup(lowers, own[5])?.dir ? own[5] : homeFor(name);
    own[5] = home;
  } else {
    const wanted = callerName();
    name = wanted && !taken.has(wanted) ? wanted : taken.has('sandbox') ? `sandbox-${uid}` : 'sandbox';
    home = homeFor(name);
    passwd.push([name, 'x', String(uid), String(gid), name, home, shell]);
  }
  if (!groups.some((f) => f.length >= 3 && f[2] === String(gid)))
    groups.push([groups.some((f) => f[0] === name) ? `${name}-${gid}` : name, 'x', String(gid), '']);
  const text = (rows: string[][]) => `${rows.map((row) => row.join(':')).join('\n')}\n`;
  return { name, home, passwd: text(passwd), group: text(groups), dirs };
}

/** The image's Env as a record (later entries win, as docker's). */
function envRecord(env: readonly string[] = []): Record<string, string> {
  const record: Record<string, string> = {};
  for (const entry of env) {
    const at = entry.indexOf('=');
    if (at > 0) record[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return record;
}

/** Writes the generated layer once: a content-addressed directory, made aside and renamed into place. */
function generatedLayer(files: Record<string, string>, dirs: readonly string[]): string {
  const key = createHash('sha256').update(JSON.stringify({ files, dirs })).digest('hex');
  const base = join(sandboxRunHome(), 'image-etc');
  const dir = join(base, key.slice(0, 32));
  if (lstatSync(dir, { throwIfNoEntry: false })?.isDirectory()) return dir;
  const temp = join(base, `.${ownedName()}`);
  try {
    mkdirSync(base, { recursive: true });
    // Half-written layers of processes killed meanwhile (`.<pid>-...`).
    sweepDeadOwners(base, (name) => (name.startsWith('.') ? ownerPid(name.slice(1)) : undefined));
    for (const sub of ['etc', ...dirs]) mkdirSync(join(temp, sub), { recursive: true, mode: 0o755 });
    for (const [path, content] of Object.entries(files)) writeFileSync(join(temp, path), content, { mode: 0o644 });
    renameSync(temp, dir);
  } catch (error) {
    removeTree(temp);
    // Another process made the same layer meanwhile: theirs is as good.
    if (!lstatSync(dir, { throwIfNoEntry: false })?.isDirectory())
      throw new SandboxError(
        'SETUP_FAILED',
        `cannot write the image's passwd layer under ${base} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): set SANDBOX_RUN_HOME to a writable directory`,
      );
  }
  return dir;
}

/** The files of /etc the view gets from the host instead, for `network: 'host'` (DNS, the host's names). */
export function hostNetworkBinds(root: string): NormalizedOptions['binds'] {
  const binds: NormalizedOptions['binds'] = [];
  for (const file of ['/etc/resolv.conf', '/etc/hosts']) {
    try {
      binds.push({ source: realpathSync(file), target: posix.join(root, file), readonly: true });
    } catch {
      // the host has none: the image's stays
    }
  }
  return binds;
}

/** Image `ref` from the store as a sandbox running as `identity` sees it. */
export function imageView(ref: string, identity: Pick<IdentityOptions, 'uid' | 'gid' | 'hostname' | 'network'>): ImageView {
  if (typeof ref !== 'string' || !ref) bad('image: expected an image reference such as postgres:16');
  const stack = imageStack(ref);
  const { uid, gid } = insideIds(identity);
  const user = account(stack.lowers, uid, gid);
  const workingDir = stack.config?.WorkingDir && posix.isAbsolute(stack.config.WorkingDir) ? posix.normalize(stack.config.WorkingDir) : '/';
  const dirs = [...user.dirs];
  if (workingDir !== '/' && !lookup(stack.lowers, workingDir)?.dir) dirs.push(workingDir.slice(1));
  const files: Record<string, string> = { 'etc/passwd': user.passwd, 'etc/group': user.group };
  if (identity.network !== 'host') files['etc/hosts'] = `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${identity.hostname}\n`;
  const image = envRecord(stack.config?.Env);
  return {
    ref,
    lowers: [generatedLayer(files, dirs), ...stack.lowers],
    env: { PATH: DEFAULT_PATH, HOME: user.home, USER: user.name, LOGNAME: user.name, ...image },
    workingDir,
    ...(stack.config ? { config: stack.config } : {}),
  };
}

/** The image options, validated and resolved: the root, the mounted images, and what they add to the mounts. */
export function normalizeImages(
  options: SandboxOptions,
  identity: Pick<IdentityOptions, 'uid' | 'gid' | 'hostname' | 'network'>,
  sandboxPath: (path: string, what: string) => string,
): Pick<NormalizedOptions, 'imageRoot' | 'imageMounts' | 'insideBinds'> & { overlays: NormalizedOptions['overlays']; binds: NormalizedOptions['binds'] } {
  const imageRoot = options.image === undefined ? undefined : imageView(options.image, identity);
  const seen = new Set<string>();
  const imageMounts = (options.images ?? []).map(({ ref, at }) => {
    const target = sandboxPath(at, 'images: at');
    if (target === '/' || seen.has(target)) bad(`images: at '${at}': use a path of its own for each image (e.g. /run/images/NAME), not '/'`);
    seen.add(target);
    return { at: target, view: imageView(ref, identity) };
  });
  const host = identity.network === 'host';
  return {
    ...(imageRoot ? { imageRoot } : {}),
    imageMounts,
    insideBinds: imageMounts.flatMap(({ at }) => IMAGE_MOUNT_INSIDE.map((path) => ({ source: path, target: `${at}${path}` }))),
    overlays: imageMounts.map(({ at, view }) => ({ lowers: view.lowers, target: at })),
    binds: host ? [...(imageRoot ? hostNetworkBinds('/') : []), ...imageMounts.flatMap(({ at }) => hostNetworkBinds(at))] : [],
  };
}

/** The image mounted at `root` in a sandbox with these options: a process started with `root` runs on it. */
export function imageMountAt(options: Pick<NormalizedOptions, 'imageMounts'>, root: string): ImageMount {
  const mount = options.imageMounts.find((m) => m.at === root.replace(/\/+$/, ''));
  if (!mount) {
    const known = options.imageMounts.map((m) => m.at).join(', ') || 'none';
    bad(`root '${root}': not an image mounted in this sandbox (its images: ${known}); mount one with images: [{ ref, at }]`);
  }
  return mount;
}
