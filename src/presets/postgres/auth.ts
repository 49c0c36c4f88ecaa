import type { PostgresAuth, PostgresRole } from './options.js';

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;

/**
 * pg_hba.conf: the user's lines first (the first match wins), then `auth`
 * for the socket and loopback. The build itself runs with trust; this file
 * replaces initdb's just before the cluster is committed.
 */
export function hbaFile(auth: PostgresAuth, extra: readonly string[]): string {
  const lines = ['# sandbox-run postgres preset', ...extra, `local all all ${auth}`, `host all all 127.0.0.1/32 ${auth}`, `host all all ::1/128 ${auth}`];
  return `${lines.join('\n')}\n`;
}

/** How stored passwords are hashed: md5 auth needs md5 hashes; every other method works with SCRAM ones. */
export function passwordEncryption(auth: PostgresAuth): 'md5' | 'scram-sha-256' {
  return auth === 'md5' ? 'md5' : 'scram-sha-256';
}

/** SQL that sets the superuser's password and creates the roles (run in the build, so hashes are in the layer). */
export function rolesSql(auth: PostgresAuth, superuser: string, password: string | undefined, roles: readonly PostgresRole[]): string {
  const sql = [`SET password_encryption = ${literal(passwordEncryption(auth))};`];
  if (password !== undefined) sql.push(`ALTER ROLE ${ident(superuser)} PASSWORD ${literal(password)};`);
  for (const role of roles) {
    const flag = (on: boolean | undefined, name: string) => (on ? name : `NO${name}`);
    const attrs = [
      flag(role.login ?? true, 'LOGIN'),
      flag(role.superuser, 'SUPERUSER'),
      flag(role.createdb, 'CREATEDB'),
      flag(role.createrole, 'CREATEROLE'),
      flag(role.replication, 'REPLICATION'),
      flag(role.bypassrls, 'BYPASSRLS'),
      ...(role.password !== undefined ? [`PASSWORD ${literal(role.password)}`] : []),
    ];
    sql.push(`CREATE ROLE ${ident(role.name)} ${attrs.join(' ')};`);
  }
  for (const role of roles) for (const parent of role.inRoles ?? []) sql.push(`GRANT ${ident(parent)} TO ${ident(role.name)};`);
  return `${sql.join('\n')}\n`;
}
