// The pure parts of pull: image references as docker reads them, the
// WWW-Authenticate challenge, and credentials from a docker config file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseChallenge } from '../../src/layers/registry/auth.js';
import { dockerConfigFile, lookupCredentials } from '../../src/layers/registry/docker-config.js';
import { formatReference, isLoopback, parseReference } from '../../src/layers/registry/reference.js';

describe('parseReference', () => {
  it.each([
    ['postgres', 'docker.io', 'registry-1.docker.io', 'library/postgres', 'latest', undefined],
    ['postgres:16', 'docker.io', 'registry-1.docker.io', 'library/postgres', '16', undefined],
    ['bitnami/redis:7.2', 'docker.io', 'registry-1.docker.io', 'bitnami/redis', '7.2', undefined],
    ['docker.io/library/postgres:16', 'docker.io', 'registry-1.docker.io', 'library/postgres', '16', undefined],
    ['index.docker.io/nginx', 'docker.io', 'registry-1.docker.io', 'library/nginx', 'latest', undefined],
    ['ghcr.io/org/app:1.2', 'ghcr.io', 'ghcr.io', 'org/app', '1.2', undefined],
    ['localhost/app', 'localhost', 'localhost', 'app', 'latest', undefined],
    ['127.0.0.1:5000/a/b/c:x_1', '127.0.0.1:5000', '127.0.0.1:5000', 'a/b/c', 'x_1', undefined],
    [`reg.lan:5000/app@sha256:${'a'.repeat(64)}`, 'reg.lan:5000', 'reg.lan:5000', 'app', undefined, `sha256:${'a'.repeat(64)}`],
  ])('%s', (text, registry, apiHost, repository, tag, digest) => {
    const ref = parseReference(text);
    expect(ref).toEqual({ registry, apiHost, repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) });
  });

  it('keeps a tag and a digest together, and formats the full form', () => {
    const ref = parseReference(`app:1@sha256:${'b'.repeat(64)}`);
    expect(formatReference(ref)).toBe(`docker.io/library/app:1@sha256:${'b'.repeat(64)}`);
    expect(formatReference(parseReference('postgres'))).toBe('docker.io/library/postgres:latest');
  });

  it.each([['Upper/Case'], ['app:'], ['app@sha256:12'], ['a//b'], ['-a'], ['app:bad/tag'], ['reg.lan:99999x/app']])('refuses %s in one line', (text) => {
    expect(() => parseReference(text)).toThrow(/^invalid image reference '.*': .*; use \[REGISTRY\/\]REPOSITORY\[:TAG\|@sha256:DIGEST\], e\.g\. postgres:16$/);
  });

  it('knows loopback hosts', () => {
    for (const host of ['localhost', 'localhost:5000', '127.0.0.1', '127.1.2.3:80', '[::1]:5000']) expect(isLoopback(host)).toBe(true);
    for (const host of ['ghcr.io', '10.0.0.1:5000', 'localhost.example.com', '128.0.0.1']) expect(isLoopback(host)).toBe(false);
  });
});

describe('parseChallenge', () => {
  it('reads Docker Hub and GHCR bearer challenges, quoted commas included', () => {
    expect(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/postgres:pull,push"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/postgres:pull,push' },
    });
    expect(parseChallenge('Basic realm="Registry Realm"')).toEqual({ scheme: 'basic', params: { realm: 'Registry Realm' } });
    expect(parseChallenge('Bearer realm=https://x/token, service=x')).toEqual({ scheme: 'bearer', params: { realm: 'https://x/token', service: 'x' } });
    expect(parseChallenge(undefined)).toBeUndefined();
  });
});

describe('lookupCredentials', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-run-docker-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.json');
  const auth = (user: string, password: string) => Buffer.from(`${user}:${password}`).toString('base64');

  it('finds auths by host, with a scheme or a path, and Docker Hub under its v1 URL', () => {
    writeFileSync(
      file,
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: auth('hub', 'p:w') },
          'https://ghcr.io/v2/': { auth: auth('gh', 'token') },
          'reg.lan:5000': { username: 'lan', password: 'pw' },
        },
      }),
    );
    expect(lookupCredentials('docker.io', file).credentials).toMatchObject({ username: 'hub', password: 'p:w' });
    expect(lookupCredentials('ghcr.io', file).credentials).toEqual({ username: 'gh', password: 'token', source: `${file} (auths."https://ghcr.io/v2/")` });
    expect(lookupCredentials('reg.lan:5000', file).credentials).toMatchObject({ username: 'lan', password: 'pw' });
    expect(lookupCredentials('quay.io', file)).toEqual({ file });
  });

  it('names a credential helper it does not run; a missing or broken file means no credentials', () => {
    writeFileSync(file, JSON.stringify({ auths: {}, credsStore: 'desktop', credHelpers: { 'gcr.io': 'gcloud' } }));
    expect(lookupCredentials('gcr.io', file)).toEqual({ file, helper: 'gcloud' });
    expect(lookupCredentials('ghcr.io', file)).toEqual({ file, helper: 'desktop' });
    writeFileSync(file, '{ not json');
    expect(lookupCredentials('ghcr.io', file)).toEqual({ file });
    expect(lookupCredentials('ghcr.io', join(dir, 'missing.json'))).toEqual({ file: join(dir, 'missing.json') });
  });

  it('reads $DOCKER_CONFIG, else ~/.docker', () => {
    expect(dockerConfigFile({ DOCKER_CONFIG: '/etc/dc', HOME: '/home/u' })).toBe('/etc/dc/config.json');
    expect(dockerConfigFile({ HOME: '/home/u' })).toBe('/home/u/.docker/config.json');
  });
});
