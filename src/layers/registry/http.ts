/**
 * One HTTP(S) request with node:http, no redirects followed and no body
 * decoded: the caller sees the bytes the server sent (what digests are
 * computed over) and decides where a redirect may lead.
 */
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface RequestOptions {
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  /** https without checking the certificate (--insecure). */
  skipTlsVerify?: boolean;
  /** No byte for this long on the socket: the request fails (a stalled server, not a slow one). */
  idleMs?: number;
}

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
  url: URL;
}

/** A request that could not be made or whose answer broke off: names the host. */
export class NetworkError extends Error {
  constructor(
    readonly host: string,
    readonly reason: string,
  ) {
    super(`cannot reach ${host}: ${reason}`);
  }
}

const IDLE_MS = 60_000;

function describe(error: NodeJS.ErrnoException): string {
  return [error.code, error.message]
    .filter(Boolean)
    .join(' ')
    .replace(/^(\S+) \1/, '$1');
}

export function send(url: URL, options: RequestOptions = {}): Promise<Response> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        headers: { 'user-agent': 'sandbox-run', ...options.headers },
        ...(url.protocol === 'https:' && options.skipTlsVerify ? { rejectUnauthorized: false } : {}),
      },
      (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url }),
    );
    req.setTimeout(options.idleMs ?? IDLE_MS, () => req.destroy(new Error(`no answer for ${(options.idleMs ?? IDLE_MS) / 1000} s`)));
    req.on('error', (error: NodeJS.ErrnoException) => reject(new NetworkError(url.host, describe(error))));
    req.end();
  });
}

/** The whole body, at most `limit` bytes (JSON documents, error bodies). */
export async function readBody(res: Response, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        res.body.destroy();
        throw new NetworkError(res.url.host, `the answer to ${res.url.pathname} is over ${limit} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof NetworkError) throw error;
    throw new NetworkError(res.url.host, `the answer to ${res.url.pathname} broke off: ${describe(error as NodeJS.ErrnoException)}`);
  }
  return Buffer.concat(chunks);
}

/** Drops a body not needed (a 401, a redirect), so the socket is freed. */
export function discard(res: Response): void {
  res.body.resume();
  res.body.on('error', () => undefined);
}
