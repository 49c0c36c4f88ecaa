/**
 * The pure part of reading an OCI image: which manifest of an index to take
 * (platform, reference), what a descriptor must look like, the image config
 * fields kept, and the store name an image reference becomes.
 */

/** Media types of indexes and manifests (OCI and Docker's v2 schema 2). */
export const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];
export const MANIFEST_TYPES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'];

/** Annotations that name an image in an index (containerd/docker's full name first). */
const NAME_ANNOTATIONS = ['io.containerd.image.name', 'org.opencontainers.image.ref.name'] as const;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

/** What sandbox-run keeps of an image config (`config` of the image JSON), as the OCI spec names it. */
export interface ImageConfig {
  /** The image it came from, as named at import. */
  reference?: string;
  /** os/architecture[/variant] of the image. */
  platform: string;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: string[];
  /** Digest of the image's config blob (the image ID, as docker shows it). */
  configDigest: string;
}

/** A one-line refusal of the image (the caller prefixes it). */
export class ImageRefused extends Error {}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Throws unless `value` is a descriptor whose digest can only name a file in blobs/sha256/. */
export function checkDescriptor(value: unknown, what: string): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (!d || typeof d !== 'object') throw new ImageRefused(`${what} is not a descriptor object`);
  if (typeof d.digest !== 'string' || !DIGEST.test(d.digest))
    throw new ImageRefused(`${what} has an unsupported digest '${String(d.digest)}' (sha256:<64 hex> only)`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw new ImageRefused(`${what} has no valid size`);
  return d as Descriptor;
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** The host's platform as OCI names it. */
export function hostPlatform(): Platform {
  return { os: 'linux', architecture: ARCH[process.arch] ?? process.arch, ...(process.arch === 'arm64' ? { variant: 'v8' } : {}) };
}

/** `linux/arm64/v8` -> Platform. */
export function parsePlatform(text: string): Platform {
  const [os, architecture, variant, extra] = text.split('/');
  if (!os || !architecture || extra !== undefined) throw new ImageRefused(`bad platform '${text}': use OS/ARCH[/VARIANT], e.g. linux/amd64`);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Whether an image for `have` is what `want` asks for (a variant left out matches any, arm64's v8 is its default). */
export function platformMatches(have: Platform, want: Platform): boolean {
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  const norm = (p: Platform) => p.variant ?? (p.architecture === 'arm64' ? 'v8' : undefined);
  return !want.variant || !have.variant || norm(have) === norm(want);
}

/** The name an index entry gives its image, if any. */
export function refName(descriptor: Descriptor): string | undefined {
  for (const key of NAME_ANNOTATIONS) {
    const value = descriptor.annotations?.[key];
    if (typeof value === 'string' && value) return value;
  }
  return undefined;
}

/**
 * The manifests of an index to consider: those named `ref` (by either name
 * annotation, full or short) when given; all of them otherwise, if they are
 * one image (one name, or none). Several images need a choice.
 */
export function selectByRef(manifests: Descriptor[], ref: string | undefined): Descriptor[] {
  if (ref) {
    const picked = manifests.filter(
      (d) => NAME_ANNOTATIONS.some((key) => d.annotations?.[key] === ref) || (refName(d) && shortReference(refName(d)!) === shortReference(ref)),
    );
    if (!picked.length) throw new ImageRefused(`no image named '${ref}' in the index (it has: ${describeRefs(manifests)})`);
    return picked;
  }
  const names = new Set(manifests.map((d) => d.annotations?.['org.opencontainers.image.ref.name'] ?? d.annotations?.['io.containerd.image.name']));
  if (names.size > 1) throw new ImageRefused(`the index holds several images (${describeRefs(manifests)}): choose one with --ref`);
  return manifests;
}

function describeRefs(manifests: Descriptor[]): string {
  return [...new Set(manifests.map((d) => refName(d) ?? '<unnamed>'))].join(', ') || 'nothing';
}

/**
 * The one manifest for `want` among an index's entries: by its platform;
 * entries without one count as the only image there is (a single-image
 * layout), attestation entries (`unknown/unknown`) never.
 */
export function selectPlatform(manifests: Descriptor[], want: Platform, asked: boolean): Descriptor {
  const real = manifests.filter((d) => d.platform?.os !== 'unknown');
  const withPlatform = real.filter((d) => d.platform);
  if (!withPlatform.length) {
    if (real.length === 1) return real[0]!;
    throw new ImageRefused(`the index lists ${real.length} manifests for one image and no platforms`);
  }
  const matching = withPlatform.filter((d) => platformMatches(d.platform!, want));
  // Among several variants (arm/v6, arm/v7), the exact one first.
  const exact = matching.find((d) => d.platform!.variant === want.variant) ?? matching[0];
  if (exact) return exact;
  const offered = withPlatform.map((d) => formatPlatform(d.platform!)).join(', ');
  throw new ImageRefused(`no image for ${formatPlatform(want)}${asked ? '' : ' (this host)'} in the index (it has ${offered}): choose one with --platform`);
}

/** `docker.io/library/postgres:16` -> `postgres:16`; `docker.io/bitnami/redis:7` -> `bitnami/redis:7`. */
export function shortReference(reference: string): string {
  return reference.replace(/^(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)\//, '').replace(/^library\//, '');
}

/**
 * The store name for an image: the reference as docker shows it
 * (`postgres:16`, `ghcr.io/org/app:1.2`), `:latest` added when it has no
 * tag. An OCI layout's `ref.name` is often the tag alone (skopeo's
 * `oci:DIR:16` writes `16`): then the layout's directory name is the
 * repository (`postgres/` + `16` -> `postgres:16`). A digest reference
 * (`app@sha256:…`) keeps the repository only (`app`), as names cannot hold `@`.
 */
export function storeName(reference: string, layoutName: string): string {
  let ref = reference;
  // A bare tag or a digest: no repository part.
  if (!ref.includes('/') && !ref.includes(':') && !ref.includes('@')) ref = `${layoutName}:${ref}`;
  ref = shortReference(ref);
  const at = ref.indexOf('@');
  if (at >= 0) ref = ref.slice(0, at);
  const lastSlash = ref.lastIndexOf('/');
  if (!ref.slice(lastSlash + 1).includes(':')) ref = `${ref}:latest`;
  return ref;
}

interface RawConfig {
  architecture?: unknown;
  os?: unknown;
  variant?: unknown;
  config?: { Env?: unknown; Entrypoint?: unknown; Cmd?: unknown; WorkingDir?: unknown; User?: unknown; ExposedPorts?: unknown };
  rootfs?: { type?: unknown; diff_ids?: unknown };
}

const strings = (value: unknown): string[] | undefined => (Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : undefined);

/** The parts of an image config JSON import needs: diff_ids, platform and the run settings kept. */
export function readConfig(json: unknown, configDigest: string): { diffIds: string[]; image: ImageConfig; platform: Platform } {
  const raw = json as RawConfig | null;
  if (!raw || typeof raw !== 'object') throw new ImageRefused('the image config is not an object');
  const diffIds = strings(raw.rootfs?.diff_ids);
  if (raw.rootfs?.type !== 'layers' || !diffIds) throw new ImageRefused('the image config has no rootfs.diff_ids');
  for (const id of diffIds) if (!DIGEST.test(id)) throw new ImageRefused(`the image config has an unsupported diff_id '${id}'`);
  const platform: Platform = {
    os: typeof raw.os === 'string' ? raw.os : 'unknown',
    architecture: typeof raw.architecture === 'string' ? raw.architecture : 'unknown',
    ...(typeof raw.variant === 'string' && raw.variant ? { variant: raw.variant } : {}),
  };
  const c = raw.config && typeof raw.config === 'object' ? raw.config : {};
  const ports = c.ExposedPorts && typeof c.ExposedPorts === 'object' ? Object.keys(c.ExposedPorts) : undefined;
  const env = strings(c.Env);
  const entrypoint = strings(c.Entrypoint);
  const cmd = strings(c.Cmd);
  const image: ImageConfig = {
    platform: formatPlatform(platform),
    ...(env ? { Env: env } : {}),
    ...(entrypoint ? { Entrypoint: entrypoint } : {}),
    ...(cmd ? { Cmd: cmd } : {}),
    ...(typeof c.WorkingDir === 'string' && c.WorkingDir ? { WorkingDir: c.WorkingDir } : {}),
    ...(typeof c.User === 'string' && c.User ? { User: c.User } : {}),
    ...(ports?.length ? { ExposedPorts: ports } : {}),
    configDigest,
  };
  return { diffIds, image, platform };
}
