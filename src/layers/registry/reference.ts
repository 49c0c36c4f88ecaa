/**
 * Image references as docker reads them: `[HOST[:PORT]/]PATH[:TAG][@sha256:HEX]`,
 * Docker Hub when the first component is no host, `library/` for a single name.
 */
import { SandboxError } from '../../errors.js';

export interface ImageReference {
  /** The registry as users name it (`docker.io`, `ghcr.io`, `127.0.0.1:5000`). */
  registry: string;
  /** The host the distribution API is spoken to (`registry-1.docker.io` for Docker Hub). */
  apiHost: string;
  /** `library/postgres`, `org/app`. */
  repository: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const PATH = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;
const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

function invalid(text: string, why: string): never {
  throw new SandboxError('BAD_OPTIONS', `invalid image reference '${text}': ${why}; use [REGISTRY/]REPOSITORY[:TAG|@sha256:DIGEST], e.g. postgres:16`);
}

export function parseReference(text: string): ImageReference {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) invalid(text, `'${digest}' is not a sha256 digest`);
  }
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  // docker's rule: the first component names a host if it has a dot or a port, or is localhost.
  const hasHost = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['));
  let registry = hasHost ? first : 'docker.io';
  let path = hasHost ? rest.slice(slash + 1) : rest;
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag)) invalid(text, `'${tag}' is not a valid tag`);
  }
  if (hasHost && !HOST.test(registry)) invalid(text, `'${registry}' is not a registry host`);
  if (!PATH.test(path)) invalid(text, `'${path}' is not a repository (lower-case letters, digits and . _ - /)`);
  if (DOCKER_HUB.has(registry)) {
    registry = 'docker.io';
    if (!path.includes('/')) path = `library/${path}`;
  }
  if (!tag && !digest) tag = 'latest';
  return {
    registry,
    apiHost: registry === 'docker.io' ? 'registry-1.docker.io' : registry,
    repository: path,
    ...(tag ? { tag } : {}),
    ...(digest ? { digest } : {}),
  };
}

/** `docker.io/library/postgres:16`, `127.0.0.1:5000/x@sha256:…`: the full form, as kept in the image config. */
export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** Whether a host is this machine's loopback, where plain HTTP is the norm (as docker treats it). */
export function isLoopback(host: string): boolean {
  const name = host.replace(/:[0-9]+$/, '').replace(/^\[|\]$/g, '');
  return name === 'localhost' || name === '::1' || /^127\.[0-9]+\.[0-9]+\.[0-9]+$/.test(name);
}
