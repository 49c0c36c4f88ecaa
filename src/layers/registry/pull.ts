/**
 * `sandbox-run pull REF`: the image for this host's platform from a
 * registry, as a stack of store layers (the same extraction, checks and
 * commit as `import`). Layers already in the store (same diff_id on the same
 * parent) are not fetched; the others download in parallel into the store's
 * download cache, each checked against its digest and size as it streams in,
 * and a download that broke off resumes there with a Range request.
 */
import { createHash } from 'node:crypto';
import { SandboxError } from '../../errors.js';
import { LAYER_TYPES } from '../image-source.js';
import { commitImage, type ImageImport, type ImageLayer, presentLayers } from '../oci-import.js';
import {
  checkDescriptor,
  type Descriptor,
  formatPlatform,
  hostPlatform,
  ImageRefused,
  INDEX_TYPES,
  MANIFEST_TYPES,
  type Platform,
  parsePlatform,
  readConfig,
  selectPlatform,
  storeName,
} from '../oci-index.js';
import { checkName, type LayerLease, type LayerStore } from '../store.js';
import { RegistryClient } from './client.js';
import { lookupCredentials } from './docker-config.js';
import { downloadBlob, downloadsDir, forgetBlob } from './download-cache.js';
import { NetworkError, readBody } from './http.js';
import { type PullProgress, silentProgress } from './progress.js';
import { formatReference, parseReference } from './reference.js';

export interface PullOptions {
  /** OS/ARCH[/VARIANT] to take from a multi-platform index (default: the host's). */
  platform?: string;
  /** The store name of the top layer (default: the reference as docker shows it, e.g. `postgres:16`). */
  name?: string;
  /** Plain HTTP to the registry (loopback registries always get it). */
  plainHttp?: boolean;
  /** HTTPS without certificate checks, or plain HTTP where the registry has no TLS. */
  insecure?: boolean;
  /** The docker config file to read credentials from (default: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`). */
  dockerConfig?: string;
  /** Layers downloaded at once (default 3). */
  concurrency?: number;
  progress?: PullProgress;
}

/** What {@link pullImage} did. */
export interface ImagePull extends ImageImport {
  /** The full reference pulled (`docker.io/library/postgres:16`). */
  reference: string;
  /** The digest of the image manifest taken (for this platform). */
  manifestDigest: string;
  /** How many layers were already in the store, and how many blobs came over the network (resumed ones included). */
  present: number;
  downloaded: number;
}

const MAX_JSON = 8 << 20;
const ACCEPT = [...MANIFEST_TYPES, ...INDEX_TYPES].join(', ');
const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

interface Fetched {
  json: unknown;
  digest: string;
  mediaType: string;
}

/** A manifest or index by tag or digest, checked against `expect` (a descriptor, or the digest of the reference). */
async function fetchManifest(client: RegistryClient, reference: string, what: string, expect?: { digest: string; size?: number }): Promise<Fetched> {
  const res = await client.get(`manifests/${reference}`, { accept: ACCEPT });
  if (res.status !== 200) await client.fail(res, what);
  const body = await readBody(res, MAX_JSON);
  const digest = sha256(body);
  if (expect && digest !== expect.digest) throw new ImageRefused(`digest mismatch: ${what} should be ${expect.digest}, its content is ${digest}`);
  if (expect?.size !== undefined && body.length !== expect.size)
    throw new ImageRefused(`size mismatch: ${what} should be ${expect.size} bytes, it is ${body.length}`);
  let json: { mediaType?: unknown };
  try {
    json = JSON.parse(body.toString('utf8')) as { mediaType?: unknown };
  } catch {
    throw new ImageRefused(`${what} is not valid JSON`);
  }
  const header = String(res.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim();
  return { json, digest, mediaType: typeof json?.mediaType === 'string' ? json.mediaType : header };
}

/** The image manifest for `want`: the reference's own, or the one an index (nested ones too) lists for the platform. */
async function chooseManifest(client: RegistryClient, what: string, want: Platform, asked: boolean): Promise<Fetched> {
  const { ref } = client;
  let fetched = await fetchManifest(client, ref.digest ?? ref.tag!, what, ref.digest ? { digest: ref.digest } : undefined);
  for (let depth = 0; INDEX_TYPES.includes(fetched.mediaType); depth++) {
    if (depth > 4) throw new ImageRefused('image indexes nested too deep');
    const list = (fetched.json as { manifests?: unknown }).manifests;
    if (!Array.isArray(list)) throw new ImageRefused(`index ${fetched.digest} has no manifests list`);
    const chosen = selectPlatform(
      list.map((d, i) => checkDescriptor(d, `index ${fetched.digest} manifest ${i}`)),
      want,
      asked,
    );
    fetched = await fetchManifest(client, chosen.digest, `manifest ${chosen.digest} of ${what}`, chosen);
  }
  if (!MANIFEST_TYPES.includes(fetched.mediaType))
    throw new ImageRefused(`${what} has media type '${fetched.mediaType}', not an OCI or Docker v2 image manifest (schema 1 images are not supported)`);
  return fetched;
}

/** A small JSON blob (the config), checked against its descriptor. */
async function fetchJsonBlob(client: RegistryClient, d: Descriptor, what: string): Promise<unknown> {
  if (d.size > MAX_JSON) throw new ImageRefused(`${what} is over ${MAX_JSON >> 20} MiB`);
  const res = await client.get(`blobs/${d.digest}`);
  if (res.status !== 200) await client.fail(res, what);
  const body = await readBody(res, MAX_JSON);
  if (sha256(body) !== d.digest || body.length !== d.size)
    throw new ImageRefused(`digest mismatch: ${what} should be ${d.digest} (${d.size} bytes), its content is ${sha256(body)} (${body.length} bytes)`);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new ImageRefused(`${what} is not valid JSON`);
  }
}

/**
 * Runs `work` over `items` with at most `limit` at once. After the first
 * failure, or `stop()`, the ones not started yet are rejected instead of run.
 */
function limited<T>(items: number[], limit: number, work: (i: number) => Promise<T>): { results: Map<number, Promise<T>>; stop: () => void } {
  const results = new Map<number, Promise<T>>();
  const gates = new Map<number, { open: () => void; cancel: () => void }>();
  for (const i of items) {
    const gate = new Promise<void>((open, cancel) => gates.set(i, { open, cancel: () => cancel(new Error('cancelled')) }));
    results.set(
      i,
      gate.then(() => work(i)),
    );
  }
  let next = 0;
  let stopped = false;
  const stop = () => {
    stopped = true;
    for (const i of items.slice(next)) gates.get(i)!.cancel();
    next = items.length;
  };
  const take = () => {
    if (stopped || next >= items.length) return;
    const i = items[next++]!;
    gates.get(i)!.open();
    results.get(i)!.then(take, stop);
  };
  for (let n = 0; n < limit; n++) take();
  return { results, stop };
}

export async function pullImage(store: LayerStore, reference: string, options: PullOptions = {}): Promise<ImagePull> {
  const ref = parseReference(reference);
  let want: Platform;
  try {
    want = options.platform ? parsePlatform(options.platform) : hostPlatform();
  } catch (error) {
    throw new SandboxError('BAD_OPTIONS', (error as Error).message);
  }
  if (options.name) checkName(options.name);
  const full = formatReference(ref);
  const name = options.name ?? storeName(full, ref.repository);
  const client = new RegistryClient(ref, {
    ...(options.plainHttp ? { plainHttp: true } : {}),
    ...(options.insecure ? { insecure: true } : {}),
    auth: lookupCredentials(ref.registry, options.dockerConfig),
  });
  const progress = options.progress ?? silentProgress;
  const what = `image ${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
  const leases: LayerLease[] = [];
  // Blobs (hard links to the cache's) and extracted layers, until commit; swept if this process dies.
  const staging = store.stage();
  let downloads = new Map<number, Promise<string>>();
  let stopDownloads = () => undefined as void;
  try {
    const manifest = await chooseManifest(client, what, want, !!options.platform);
    const body = manifest.json as { config?: unknown; layers?: unknown };
    if (!body || typeof body !== 'object' || !Array.isArray(body.layers)) throw new ImageRefused(`manifest ${manifest.digest} has no layers list`);
    const config = checkDescriptor(body.config, 'the manifest config');
    const blobs = body.layers.map((value, i) => {
      const d = checkDescriptor(value, `layer ${i}`);
      if (d.mediaType && !LAYER_TYPES.includes(d.mediaType))
        throw new ImageRefused(`layer ${i} has media type ${d.mediaType} (foreign or unknown layers are not pulled)`);
      return d;
    });
    const { diffIds, image, platform } = readConfig(await fetchJsonBlob(client, config, `config ${config.digest}`), config.digest);
    if (diffIds.length !== blobs.length) throw new ImageRefused(`the manifest lists ${blobs.length} layers, the config's rootfs.diff_ids ${diffIds.length}`);
    if (platform.os !== 'unknown' && (platform.os !== want.os || platform.architecture !== want.architecture))
      throw new ImageRefused(
        `the image is for ${image.platform}, not ${formatPlatform(want)}${options.platform ? '' : ' (this host)'}: pass --platform ${image.platform}`,
      );

    // Held while the pull stacks new layers on them, so that a concurrent prune cannot take them away.
    const present = await presentLayers(store, diffIds);
    for (const info of present) leases.push(await store.lease(info.digest));
    progress.start(blobs);
    present.forEach((_, i) => progress.update(i, 'exists'));
    const missing = blobs.map((_, i) => i).filter((i) => i >= present.length);
    ({ results: downloads, stop: stopDownloads } = limited(missing, Math.max(1, options.concurrency ?? 3), async (i) => {
      const blob = blobs[i]!;
      const file = await downloadBlob(client, store.dir, blob, `layer ${i + 1} (${blob.digest})`, staging.dir, (bytes, resumed) =>
        progress.update(i, resumed ? 'resuming' : 'downloading', bytes),
      ).catch((error) => {
        progress.update(i, 'failed');
        throw error;
      });
      progress.update(i, 'downloaded', blob.size);
      return file;
    }));
    // Awaited in order by the extraction; a failure is seen there (or in the finally below), never unhandled.
    for (const promise of downloads.values()) promise.catch(() => undefined);
    const layers: ImageLayer[] = blobs.map((d, i) => ({
      digest: d.digest,
      size: d.size,
      diffId: diffIds[i]!,
      ...(d.mediaType ? { mediaType: d.mediaType } : {}),
      file: downloads.get(i) ?? '',
    }));
    const result = await commitImage(store, staging, {
      source: `${ref.registry}/${ref.repository}@${manifest.digest}`,
      layers,
      present,
      image: { ...image, reference: full },
      name,
      verb: 'pull',
      onExtracted: (i) => progress.update(i, 'extracted'),
    });
    // In the store now: the cached blobs are not needed any more.
    for (const i of missing) forgetBlob(store.dir, blobs[i]!.digest);
    return { ...result, reference: full, manifestDigest: manifest.digest, present: present.length, downloaded: missing.length };
  } catch (error) {
    if (error instanceof ImageRefused) throw new SandboxError('BAD_OPTIONS', `refusing to pull ${full}: ${error.message}`);
    if (error instanceof NetworkError) {
      const resumable = /broke off/.test(error.reason)
        ? `; the partial download stays in ${downloadsDir(store.dir)}: pull again to resume it (sandbox-run prune deletes it)`
        : '';
      const where = error.host === ref.registry ? '' : ` (${error.host})`;
      throw new SandboxError('SETUP_FAILED', `cannot pull ${full}: registry ${ref.registry}${where}: ${error.reason}${resumable}`);
    }
    throw error;
  } finally {
    stopDownloads();
    // Downloads still running finish into the cache (for the next pull) before the error is reported.
    await Promise.allSettled(downloads.values());
    for (const lease of leases) lease.release();
    staging.discard();
    progress.end();
  }
}
