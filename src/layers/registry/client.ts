/**
 * A client of one repository on one registry (the OCI distribution API):
 * manifests and blobs by GET, authentication on the first 401, redirects
 * (blob storage answers with a 307 to S3 or a CDN) followed with the
 * credentials kept to the registry's own origin.
 */
import { SandboxError } from '../../errors.js';
import { basicAuth, type Challenge, parseChallenge, tokenOf } from './auth.js';
import type { CredentialLookup } from './docker-config.js';
import { discard, NetworkError, type Response, readBody, send } from './http.js';
import { type ImageReference, isLoopback } from './reference.js';

export interface ClientOptions {
  /** Speak plain HTTP to the registry (`--plain-http`; loopback registries always do). */
  plainHttp?: boolean;
  /** HTTPS without certificate checks, plain HTTP where the registry does not speak TLS (`--insecure`, as crane's). */
  insecure?: boolean;
  /** What the docker config file holds for this registry. */
  auth: CredentialLookup;
}

const MAX_REDIRECTS = 5;
const MAX_ERROR_BODY = 64 << 10;

/** The first `errors[].message` of a registry's error body, if it has one. */
async function registryMessage(res: Response): Promise<string> {
  try {
    const body = JSON.parse((await readBody(res, MAX_ERROR_BODY)).toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const first = body.errors?.[0];
    return first ? [first.code, first.message].filter(Boolean).join(': ') : '';
  } catch {
    return '';
  }
}

export class RegistryClient {
  readonly ref: ImageReference;
  readonly #options: ClientOptions;
  #scheme: 'https:' | 'http:';
  #authorization: string | undefined;
  /** How we authenticated, for messages. */
  #tried = 'anonymously';

  constructor(ref: ImageReference, options: ClientOptions) {
    this.ref = ref;
    this.#options = options;
    this.#scheme = options.plainHttp ? 'http:' : 'https:';
  }

  /** The registry as messages name it. */
  get registry(): string {
    return this.ref.registry;
  }

  #mayUsePlainHttp(host: string): boolean {
    return !!(this.#options.plainHttp || this.#options.insecure || isLoopback(host));
  }

  /** One request and its redirects; Authorization goes only to the registry's own origin. */
  async #follow(url: URL, headers: Record<string, string>): Promise<Response> {
    const origin = url.origin;
    let target = url;
    for (let hops = 0; ; hops++) {
      const own = target.origin === origin;
      const res = await this.#send(target, { ...headers, ...(own && this.#authorization ? { authorization: this.#authorization } : {}) });
      const location = res.headers.location;
      if (![301, 302, 303, 307, 308].includes(res.status) || !location) return res;
      discard(res);
      if (hops >= MAX_REDIRECTS) throw new NetworkError(this.registry, `more than ${MAX_REDIRECTS} redirects from ${url.pathname}`);
      target = new URL(location, target);
      if (target.protocol !== 'https:' && !(target.protocol === 'http:' && this.#mayUsePlainHttp(target.host)))
        throw new NetworkError(this.registry, `a redirect to ${target.protocol}//${target.host} (plain HTTP only with --plain-http or --insecure)`);
    }
  }

  /**
   * --insecure, and any host on this machine (as docker takes localhost): HTTPS without
   * certificate checks, and plain HTTP when the server speaks no TLS at all (crane does the same).
   */
  #lenient(host: string): boolean {
    return !!this.#options.insecure || isLoopback(host);
  }

  async #send(url: URL, headers: Record<string, string>): Promise<Response> {
    const lenient = this.#lenient(url.host);
    try {
      return await send(url, { headers, ...(lenient ? { skipTlsVerify: true } : {}) });
    } catch (error) {
      const plain = lenient && url.protocol === 'https:' && error instanceof NetworkError && /EPROTO|wrong version number|ECONNRESET/i.test(error.reason);
      if (!plain) throw error;
      if (url.host === this.ref.apiHost) this.#scheme = 'http:';
      return send(new URL(url.href.replace(/^https:/, 'http:')), { headers });
    }
  }

  #url(path: string): URL {
    return new URL(`${this.#scheme}//${this.ref.apiHost}/v2/${this.ref.repository}/${path}`);
  }

  /** GET /v2/<repository>/<path>, authenticating on a 401 (once: a second 401 is a refusal). */
  async get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    let res = await this.#follow(this.#url(path), headers);
    if (res.status !== 401) return res;
    const challenge = parseChallenge(String(res.headers['www-authenticate'] ?? ''));
    discard(res);
    await this.#authenticate(challenge);
    res = await this.#follow(this.#url(path), headers);
    if (res.status === 401 || res.status === 403) {
      discard(res);
      this.#refused();
    }
    return res;
  }

  /** Throws the one-line error for a non-2xx answer: 404 is an unknown image, anything else names the status. */
  async fail(res: Response, what: string): Promise<never> {
    const message = await registryMessage(res);
    if (res.status === 404) throw new SandboxError('BAD_OPTIONS', `no ${what} in registry ${this.registry}${message ? ` (${message})` : ''}`);
    if (res.status === 401 || res.status === 403) this.#refused();
    throw new SandboxError('SETUP_FAILED', `registry ${this.registry} answered ${res.status} for ${what}${message ? `: ${message}` : ''}`);
  }

  /** The refusal: which credentials were tried, and how to log in. */
  #refused(): never {
    const { auth } = this.#options;
    const login = this.registry === 'docker.io' ? 'docker login' : `docker login ${this.registry}`;
    const where = auth.helper
      ? `; its credentials would be in credential helper docker-credential-${auth.helper}, which sandbox-run does not run: put them in ${auth.file} as auths."${this.registry}".auth`
      : `; log in with '${login}' (sandbox-run reads ${auth.file}; DOCKER_CONFIG points elsewhere)`;
    throw new SandboxError('BAD_OPTIONS', `registry ${this.registry} refused access to ${this.ref.repository} ${this.#tried}${where}`);
  }

  async #authenticate(challenge: Challenge | undefined): Promise<void> {
    const { credentials } = this.#options.auth;
    if (credentials) this.#tried = `with the credentials of '${credentials.username}' from ${credentials.source}`;
    else this.#tried = `anonymously (no credentials for ${this.registry} in ${this.#options.auth.file})`;
    if (challenge?.scheme === 'basic') {
      if (!credentials) this.#refused();
      this.#authorization = basicAuth(credentials.username, credentials.password);
      return;
    }
    if (challenge?.scheme !== 'bearer' || !challenge.params.realm)
      throw new SandboxError(
        'SETUP_FAILED',
        `registry ${this.registry} asks for authentication sandbox-run does not speak (${challenge?.scheme ?? 'no WWW-Authenticate'})`,
      );
    let realm: URL;
    try {
      realm = new URL(challenge.params.realm);
    } catch {
      throw new SandboxError('SETUP_FAILED', `registry ${this.registry} names a token service that is no URL: '${challenge.params.realm}'`);
    }
    // Credentials never travel in plain text to a host that is not this machine.
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && this.#mayUsePlainHttp(realm.host)))
      throw new SandboxError(
        'SETUP_FAILED',
        `registry ${this.registry} sends to a token service over ${realm.protocol} (${realm.host}): pass --insecure to allow it`,
      );
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
    realm.searchParams.set('scope', challenge.params.scope || `repository:${this.ref.repository}:pull`);
    const res = await this.#send(realm, credentials ? { authorization: basicAuth(credentials.username, credentials.password) } : {}).catch((error) => {
      throw error instanceof NetworkError ? new NetworkError(`token service ${realm.host}`, error.reason) : error;
    });
    if (res.status === 401 || res.status === 403) {
      discard(res);
      this.#refused();
    }
    if (res.status !== 200) {
      const message = await registryMessage(res);
      throw new SandboxError('SETUP_FAILED', `the token service of ${this.registry} (${realm.host}) answered ${res.status}${message ? `: ${message}` : ''}`);
    }
    let token: string | undefined;
    try {
      token = tokenOf(JSON.parse((await readBody(res, MAX_ERROR_BODY)).toString('utf8')));
    } catch (error) {
      if (error instanceof NetworkError) throw error;
    }
    if (!token) throw new SandboxError('SETUP_FAILED', `the token service of ${this.registry} (${realm.host}) gave no token`);
    this.#authorization = `Bearer ${token}`;
  }
}
