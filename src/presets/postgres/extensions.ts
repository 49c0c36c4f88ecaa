import { SandboxError } from '../../errors.js';

const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** Extensions that come from their own package (Debian/Ubuntu names, %d the major version); the rest of the usual ones are contrib, in postgresql-N. */
const PACKAGES: Readonly<Record<string, string>> = {
  postgis: 'postgresql-%d-postgis-3',
  postgis_topology: 'postgresql-%d-postgis-3',
  postgis_raster: 'postgresql-%d-postgis-3',
  vector: 'postgresql-%d-pgvector',
  timescaledb: 'timescaledb-2-postgresql-%d',
  pg_cron: 'postgresql-%d-cron',
  pg_partman: 'postgresql-%d-partman',
  hypopg: 'postgresql-%d-hypopg',
  pgtap: 'postgresql-%d-pgtap',
  pg_repack: 'postgresql-%d-repack',
  plv8: 'postgresql-%d-plv8',
  plpython3u: 'postgresql-plpython3-%d',
  plperl: 'postgresql-plperl-%d',
  pltcl: 'postgresql-pltcl-%d',
  h3: 'postgresql-%d-h3',
  age: 'postgresql-%d-age',
  rum: 'postgresql-%d-rum',
  orafce: 'postgresql-%d-orafce',
  pg_hint_plan: 'postgresql-%d-pg-hint-plan',
};

/** Asks for the requested extensions the server lacks (one query, so the error names them all). */
export function missingExtensionsSql(names: readonly string[]): string {
  return `SELECT n FROM unnest(ARRAY[${names.map(literal).join(',')}]::text[]) AS n WHERE n NOT IN (SELECT name FROM pg_available_extensions)`;
}

/** CASCADE: an extension's own dependencies (e.g. earthdistance needs cube) come along. */
export function createExtensionsSql(names: readonly string[]): string {
  return names.map((name) => `CREATE EXTENSION IF NOT EXISTS "${name.replace(/"/g, '""')}" CASCADE;`).join('\n');
}

/** One line naming the missing extensions and the packages that bring them. */
export function missingExtensionsError(missing: readonly string[], major: number, bindir: string): SandboxError {
  const hint = missing
    .map((name) => {
      const pkg = PACKAGES[name];
      return pkg
        ? `${name}: apt-get install ${pkg.replace('%d', String(major))}`
        : `${name}: install the package that provides it for PostgreSQL ${major} ` +
            `(contrib extensions: postgresql-${major} on Debian/Ubuntu, postgresql${major}-contrib on RHEL)`;
    })
    .join('; ');
  return new SandboxError(
    'SETUP_FAILED',
    `postgres preset: PostgreSQL ${major} (${bindir}) has no extension ${missing.map((n) => `'${n}'`).join(', ')}; ${hint}`,
  );
}
