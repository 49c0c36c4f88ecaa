import type { Sandbox } from '../sandbox/sandbox.js';
import type { ImageConfig } from './oci-index.js';

/** What the store knows about one committed layer. */
export interface LayerInfo {
  /** sha256 over the canonical description of the tree ("sha256:<hex>"). */
  digest: string;
  /** Tags pointing at this digest (a name moves to a new digest on rebuild). */
  names: string[];
  /** Digest of the parent layer; a child mounts as lowerdir=child:parent:... */
  parent?: string;
  /** Bytes on disk. */
  size: number;
  /** ISO 8601. */
  created: string;
  /** How it was made. */
  source:
    | { kind: 'snapshot'; path: string; method: 'reflink' | 'copy' }
    | { kind: 'build'; recipe: string; cacheKey: string }
    | { kind: 'import'; file: string }
    /** One layer of an OCI or docker image (`sandbox-run import`): its uncompressed digest. */
    | { kind: 'image'; file: string; diffId: string }
    /** A corrupt layer whose meta.json cannot be read. */
    | { kind: 'unknown' };
  /** Host directory holding the layer's tree (read-only by convention; only ever seen through overlays). */
  path: string;
  /** The top layer of an imported image: the image's run settings (Env, Entrypoint, Cmd, ...). */
  image?: ImageConfig;
  /** Set by `list()` and `check()` when the layer no longer matches what was committed: what is wrong. It is never mounted. */
  corrupt?: string;
}

/**
 * A recipe: run something in a sandbox on top of a parent layer (or an empty
 * one) and commit the sandbox's writable layer as a new layer. `docker commit`
 * and a Dockerfile RUN step in one.
 */
export interface LayerRecipe {
  /** The tag of the layer it produces. */
  name: string;
  /** Parent layer name or digest; none: an empty layer. */
  parent?: string;
  /** Where the parent (and the new layer) are mounted inside the build sandbox. */
  mountPoint: string;
  /** A command (argv) run in the build sandbox, or a function given the live build sandbox. */
  run: readonly string[] | ((sandbox: Sandbox) => Promise<void>);
  /** Host files or globs (relative to cwd) whose content is part of the cache key; visible read-only in the build sandbox. */
  inputs?: readonly string[];
  /** Extra text in the cache key (e.g. a preset's version, or a function's source). */
  cacheKey?: string;
  /** Host working directory of the build (default: process.cwd()). */
  cwd?: string;
  env?: Readonly<Record<string, string>>;
  /** Images mounted in the build sandbox for steps run with `root: at` (a preset's server from an image); the caller puts their digests in cacheKey. */
  images?: readonly { ref: string; at: string }[];
}
