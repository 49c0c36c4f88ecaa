/**
 * The token dance of Docker Hub, GHCR and distribution's `auth: token`: a
 * 401 with `WWW-Authenticate: Bearer realm=...,service=...,scope=...` sends
 * the client to the realm for a token (with Basic credentials when it has
 * them, anonymously otherwise), which it then presents as `Bearer TOKEN`.
 * A `Basic` challenge takes the credentials directly.
 */

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** `Bearer realm="…",service="…"` -> { scheme: 'bearer', params }. Quoted values may hold commas. */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const match = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  const pair = /\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?/gy;
  const rest = match[2]!;
  for (let m = pair.exec(rest); m; m = pair.exec(rest)) params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '');
  return { scheme: match[1]!.toLowerCase(), params };
}

export const basicAuth = (username: string, password: string) => `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;

/** The token in a token endpoint's JSON (`token`, or OAuth's `access_token`). */
export function tokenOf(json: unknown): string | undefined {
  const body = json as { token?: unknown; access_token?: unknown } | null;
  const token = body && typeof body === 'object' ? (body.token ?? body.access_token) : undefined;
  return typeof token === 'string' && token ? token : undefined;
}
