// A real registry for the pull tests: Debian's docker-registry (distribution
// 2.8) on 127.0.0.1, filesystem storage in a temp dir, filled by skopeo;
// a token server in Node for its `auth: token` mode (a JWT signed with a
// key whose certificate node-forge makes); and a proxy in front of it that
// counts, cuts, corrupts or redirects what passes.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createSign, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import forge from 'node-forge';

/** Why the registry tests cannot run here, or undefined. */
export function missingRegistryTools(): string | undefined {
  const missing = ['docker-registry', 'skopeo'].filter((tool) => {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  return missing.length ? `${missing.join(' and ')} not installed (apt-get install docker-registry skopeo)` : undefined;
}

export interface Registry {
  host: string;
  stop(): Promise<void>;
  /** The registry's log so far (access log included). */
  log(): string;
}

export interface TokenAuth {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
}

/** A self-signed certificate (node-forge) for `ips`, and its RSA key. */
export function selfSigned(commonName: string, ips: string[] = []): { privateKey: KeyObject; cert: forge.pki.Certificate; key: string; certPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  const subject = [{ name: 'commonName', value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
    ...(ips.length ? [{ name: 'subjectAltName', altNames: ips.map((ip) => ({ type: 7, ip })) }] : []),
  ]);
  const key = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  cert.sign(forge.pki.privateKeyFromPem(key), forge.md.sha256.create());
  return { privateKey, cert, key, certPem: forge.pki.certificateToPem(cert) };
}

/** Starts docker-registry on 127.0.0.1 (a port it picks) over `storage`; resolves once it says where it listens. */
export async function startRegistry(dir: string, storage: string, auth?: TokenAuth): Promise<Registry> {
  const config = join(dir, `registry-${randomBytes(4).toString('hex')}.yml`);
  const tokenAuth = auth
    ? `auth:\n  token:\n    realm: ${auth.realm}\n    service: ${auth.service}\n    issuer: ${auth.issuer}\n    rootcertbundle: ${auth.certFile}\n`
    : '';
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\n  maintenance:\n    uploadpurging:\n      enabled: false\n` +
      `http:\n  addr: 127.0.0.1:0\n  secret: sandbox-run-test\n${tokenAuth}`,
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const host = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (127\.0\.0\.1:\d+)/.exec(output);
      if (match) resolve(match[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`docker-registry exited (${code}) before listening:\n${output}`)));
    child.on('error', reject);
  });
  return {
    host,
    log: () => output,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.on('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export interface TokenServer extends TokenAuth {
  /** Every token request: the account it authenticated as (undefined: anonymous, null: bad credentials) and the scope. */
  requests: { user: string | undefined | null; scope: string }[];
  stop(): Promise<void>;
}

/**
 * A token server as distribution's `auth: token` expects one: Basic
 * credentials checked against `users`, the scope granted as `policy` says,
 * the token a JWT (RS256) whose x5c header carries a self-signed
 * certificate, which the registry trusts through its rootcertbundle.
 */
export async function startTokenServer(
  dir: string,
  users: Record<string, string>,
  policy: (user: string | undefined, repository: string) => string[],
): Promise<TokenServer> {
  const { privateKey, cert } = selfSigned('sandbox-run test token issuer');
  const certPem = forge.pki.certificateToPem(cert);
  const certFile = join(dir, `token-${randomBytes(4).toString('hex')}.pem`);
  writeFileSync(certFile, certPem);
  const x5c = forge.util.encode64(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes());
  const service = 'sandbox-run-test';
  const issuer = 'sandbox-run-test-issuer';
  const requests: TokenServer['requests'] = [];

  const sign = (claims: object) => {
    const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [x5c] }));
    const body = b64url(JSON.stringify(claims));
    const signature = createSign('RSA-SHA256').update(`${head}.${body}`).sign(privateKey);
    return `${head}.${body}.${b64url(signature)}`;
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const scope = url.searchParams.get('scope') ?? '';
    let user: string | undefined | null;
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (basic) {
      const [name, password] = Buffer.from(basic, 'base64').toString().split(/:(.*)/s);
      user = name && users[name] !== undefined && users[name] === password ? name : null;
    }
    requests.push({ user, scope });
    if (user === null) {
      res.writeHead(401, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ details: 'incorrect username or password' }));
    }
    const access = scope
      .split(' ')
      .filter(Boolean)
      .map((one) => {
        const [type, name, actions] = one.split(':');
        const allowed = policy(user, name ?? '');
        return { type: type!, name: name!, actions: (actions ?? '').split(',').filter((a) => allowed.includes(a)) };
      });
    const now = Math.floor(Date.now() / 1000);
    const token = sign({ iss: issuer, sub: user ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  const port = await listen(server);
  return { realm: `http://127.0.0.1:${port}/token`, service, issuer, certFile, requests, stop: () => close(server) };
}

function listen(server: Server, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) => server.listen(0, host, () => resolve((server.address() as AddressInfo).port)));
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** What the proxy does with one request: pass it on (the default), or its own answer. */
export type ProxyRule = (req: IncomingMessage, res: ServerResponse, forward: (transform?: ForwardTransform) => void) => boolean;
/** Rewrites the upstream answer's body as it streams (chunk, bytes before it) -> chunk, or 'cut' to break the connection there. */
export type ForwardTransform = (chunk: Buffer, offset: number) => Buffer | 'cut';

export interface TestProxy {
  host: string;
  /** Every request seen: method, path, Range header. */
  requests: { method: string; path: string; range?: string }[];
  /** Rules tried in order on each request; the first that returns true handled it. */
  rules: ProxyRule[];
  stop(): Promise<void>;
}

/** An HTTP(S) proxy in front of `upstream` (host:port) on `host` (default 127.0.0.1): counts every request and applies `rules`. */
export async function startProxy(upstream: string, options: { host?: string; tls?: { key: string; cert: string } } = {}): Promise<TestProxy> {
  const requests: TestProxy['requests'] = [];
  const rules: ProxyRule[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', ...(req.headers.range ? { range: req.headers.range } : {}) });
    const forward = (transform?: ForwardTransform) => {
      const [hostname, port] = upstream.split(':');
      const out = request({ hostname, port: Number(port), method: req.method, path: req.url, headers: { ...req.headers, host: upstream } }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        let offset = 0;
        up.on('data', (chunk: Buffer) => {
          const next = transform ? transform(chunk, offset) : chunk;
          offset += chunk.length;
          if (next === 'cut') {
            up.destroy();
            res.socket?.destroy();
            return;
          }
          res.write(next);
        });
        up.on('end', () => res.end());
      });
      out.on('error', () => res.socket?.destroy());
      req.pipe(out);
    };
    for (const rule of rules) if (rule(req, res, forward)) return;
    forward();
  };
  const server = options.tls ? createHttpsServer(options.tls, handler) : createServer(handler);
  const host = options.host ?? '127.0.0.1';
  const port = await listen(server, host);
  return { host: `${host}:${port}`, requests, rules, stop: () => close(server) };
}

/** skopeo copy of an OCI layout's image (all of an index's images with `all`) to docker://HOST/REPO:TAG over plain HTTP. */
export function pushLayout(layout: string, ref: string, dest: string, options: { all?: boolean; creds?: string } = {}): void {
  execFileSync(
    'skopeo',
    [
      '--insecure-policy',
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      ...(options.all ? ['--all'] : []),
      ...(options.creds ? ['--dest-creds', options.creds] : []),
      `oci:${layout}:${ref}`,
      `docker://${dest}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
}
