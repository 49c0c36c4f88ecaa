import { SandboxError } from '../errors.js';
import type { ReadinessProbe, ServiceSpec } from '../services/types.js';
import { type PresetImage, presetImage } from './common/image.js';
import type { PrepareResult, Preset, PresetParts } from './types.js';

/** How to tell that the image's server is ready. */
export type ImageServiceReady =
  /** Something listens on this TCP port inside the sandbox. */
  | { port: number }
  /** Its output has a line matching this. */
  | { log: RegExp | string }
  /** This command, run in the image, exits 0 (e.g. ['redis-cli', 'ping']). */
  | { command: readonly string[] };

export interface ImageServiceOptions {
  /** An image in the layer store (`sandbox-run pull redis:7` or `sandbox-run import`). */
  image: string;
  /** Service name: its log file, messages and the exported `<NAME>_HOST`/`<NAME>_PORT` (default: the image's repository, e.g. 'redis'). */
  name?: string;
  /** What runs (default: the image's Entrypoint + Cmd, as `docker run` does). */
  command?: readonly string[];
  /** Variables for the service on top of the image's Env. */
  env?: Readonly<Record<string, string>>;
  /** Working directory in the image (default: its WorkingDir). */
  cwd?: string;
  /** Default: the first of `ports`, if any; else ready once started. */
  ready?: ImageServiceReady;
  /** TCP ports it listens on (default: the image's ExposedPorts): the first is exported as `<NAME>_PORT`. */
  ports?: readonly number[];
  /** Variables offered to the sandbox, added to `<NAME>_HOST` and `<NAME>_PORT`. */
  exports?: Readonly<Record<string, string>>;
  startTimeoutMs?: number;
  stopSignal?: NodeJS.Signals;
  stopGraceMs?: number;
}

function bad(message: string): never {
  throw new SandboxError('BAD_OPTIONS', `imageService: ${message}`);
}

/** 'docker.io/library/redis:7' -> 'redis'. */
function repositoryName(ref: string): string {
  const last = ref.replace(/@.*$/, '').split('/').at(-1) ?? '';
  return last.replace(/:.*$/, '').replace(/[^A-Za-z0-9_.-]/g, '-') || 'image';
}

/** ExposedPorts' TCP ports ('6379/tcp', '5432'). */
function exposedPorts(ports: readonly string[] | undefined): number[] {
  return (ports ?? []).flatMap((spec) => {
    const match = /^(\d+)(?:\/tcp)?$/.exec(spec);
    return match ? [Number(match[1])] : [];
  });
}

function probe(ready: ImageServiceReady | undefined, ports: readonly number[]): ReadinessProbe | undefined {
  if (!ready) return ports.length ? { tcp: ports[0]! } : undefined;
  if ('port' in ready) return { tcp: ready.port };
  if ('log' in ready) return { log: ready.log };
  return { command: ready.command };
}

class ImageService implements Preset {
  readonly name: string;
  #image: PresetImage | undefined;

  constructor(private readonly options: ImageServiceOptions) {
    if (typeof options.image !== 'string' || !options.image) bad('image: expected an image reference such as redis:7');
    this.name = options.name ?? repositoryName(options.image);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(this.name)) bad(`name '${this.name}': use up to 64 letters, digits, _ . -`);
    for (const port of options.ports ?? []) if (!Number.isInteger(port) || port < 1 || port > 65535) bad(`ports: ${port} is not a TCP port`);
    if (options.command?.length === 0) bad('command: empty');
  }

  /** Finds the image in the store (one line naming pull and import if it is not there); nothing is built. */
  async prepare(): Promise<PrepareResult> {
    this.#image = presetImage(this.options.image, this.name);
    return { cached: true, description: `${this.options.image} ${this.#image.digest}` };
  }

  forSandbox(): PresetParts {
    const image = this.#image;
    if (!image) throw new SandboxError('SETUP_FAILED', `imageService ${this.name}: prepare() must finish before sandboxes are created`);
    const o = this.options;
    const command = o.command ?? [...(image.config?.Entrypoint ?? []), ...(image.config?.Cmd ?? [])];
    if (!command.length) bad(`image ${o.image} has no Entrypoint or Cmd: give a command`);
    const ports = o.ports ?? exposedPorts(image.config?.ExposedPorts);
    const prefix = this.name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
    const exports = { [`${prefix}_HOST`]: '127.0.0.1', ...(ports.length ? { [`${prefix}_PORT`]: String(ports[0]) } : {}), ...o.exports };
    const ready = probe(o.ready, ports);
    const spec: ServiceSpec = {
      name: this.name,
      command,
      root: image.at,
      ...(o.env ? { env: o.env } : {}),
      ...(o.cwd ? { cwd: o.cwd } : {}),
      ...(ready ? { ready } : {}),
      ...(o.startTimeoutMs ? { startTimeoutMs: o.startTimeoutMs } : {}),
      ...(o.stopSignal ? { stopSignal: o.stopSignal } : {}),
      ...(o.stopGraceMs ? { stopGraceMs: o.stopGraceMs } : {}),
      exports,
    };
    return { images: [{ ref: image.digest, at: image.at }], services: [spec], env: exports };
  }
}

/**
 * Any server from an image, as a preset: the image is mounted copy-on-write
 * in each sandbox and the service runs chrooted into it (Entrypoint + Cmd
 * and Env from the image), on the sandbox's own localhost.
 *
 * ```ts
 * const cache = imageService({ image: 'redis:7', ready: { log: /Ready to accept/ } });
 * await using sb = await createSandbox({ presets: [cache] }); // REDIS_HOST, REDIS_PORT
 * ```
 */
export function imageService(options: ImageServiceOptions): Preset {
  return new ImageService(options);
}
