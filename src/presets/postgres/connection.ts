import { createHash } from 'node:crypto';
import { basename } from 'node:path';

export interface ConnectionPlan {
  user: string;
  password: string | undefined;
  database: string;
  port: number;
  connect: 'tcp' | 'socket';
  /** Host path of the CA file (next to the socket, bound at the same path): set when the server offers TLS. */
  caFile: string | undefined;
  omit: readonly string[];
  /** The data directory inside the sandbox: exported as PGDATA, for tools that read the cluster (pg_checksums -D "$PGDATA"). */
  dataDir?: string;
  /** The server's preload variables (copy-up.ts lazyOpenEnv), if the copy-up mechanism preloads a library. */
  preload?: Readonly<Record<string, string>>;
}

/** The variable holding the server's LD_PRELOAD, for tools that must see the files as the server does. */
export const PRELOAD_ENV = 'SANDBOX_RUN_PG_PRELOAD';

/**
 * The server's LD_PRELOAD as SANDBOX_RUN_PG_PRELOAD, and its directory variables as they are: tools that read relation
 * files themselves (pg_checksums, pg_verifybackup, pg_amcheck's neighbours) see copyUp 'pages' writes only through the
 * library, `LD_PRELOAD=$SANDBOX_RUN_PG_PRELOAD pg_checksums --check -D "$PGDATA"`. The directory variables do nothing
 * without LD_PRELOAD, and LD_PRELOAD itself is never exported: every process of the test would load the libraries.
 */
export function preloadExports(preload: Readonly<Record<string, string>> | undefined): Record<string, string> {
  if (!preload?.LD_PRELOAD) return {};
  const { LD_PRELOAD, ...dirs } = preload;
  return { [PRELOAD_ENV]: LD_PRELOAD, ...dirs };
}

/**
 * The variables a sandbox gets. Over the socket (a host directory bound at
 * the same path) they work inside and from the host; over TCP they reach
 * 127.0.0.1 of the sandbox's own network, so only inside. TLS runs over
 * TCP only (neither libpq nor node-postgres does it on a unix socket).
 */
export function connectionEnv(plan: ConnectionPlan, sockets: string): Record<string, string> {
  const { user, password, database, port, connect, caFile } = plan;
  const auth = `${encodeURIComponent(user)}${password !== undefined ? `:${encodeURIComponent(password)}` : ''}`;
  const params = new URLSearchParams();
  if (connect === 'socket') params.set('host', sockets);
  else if (caFile) {
    params.set('sslmode', 'verify-full');
    params.set('sslrootcert', caFile);
  }
  const env: Record<string, string> = {
    PGHOST: connect === 'socket' ? sockets : 'localhost',
    PGPORT: String(port),
    PGUSER: user,
    PGDATABASE: database,
    ...(password !== undefined ? { PGPASSWORD: password } : {}),
    ...(caFile ? { PGSSLROOTCERT: caFile } : {}),
    ...(caFile && connect === 'tcp' ? { PGSSLMODE: 'verify-full' } : {}),
    DATABASE_URL: `postgresql://${auth}@localhost:${port}/${database}${params.size ? `?${params.toString().replace(/\+/g, '%20')}` : ''}`,
    ...(plan.dataDir ? { PGDATA: plan.dataDir } : {}),
    ...preloadExports(plan.preload),
  };
  for (const name of plan.omit) delete env[name];
  return env;
}

/**
 * `<project>-<hash>/postgres-<database>`: two projects sharing a store (and
 * a database name) keep their own tag; the hash tells apart projects with
 * the same directory name.
 */
export function defaultLayerName(baseDir: string, database: string): string {
  const project =
    basename(baseDir)
      .replace(/[^\w.-]+/g, '_')
      .replace(/^[._-]+/, '')
      .slice(0, 40) || 'project';
  const hash = createHash('sha256').update(baseDir).digest('hex').slice(0, 8);
  return `${project}-${hash}/postgres-${database}`;
}
