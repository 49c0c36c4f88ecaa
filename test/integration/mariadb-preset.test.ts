// The MariaDB preset against a real mariadbd: a seeded data directory in a
// cached layer, a server per sandbox on its own loopback, the host through
// the socket, accounts and passwords, MariaDB's own defaults, errors.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { instantiatePresets, parsePresets } from '../../src/config/presets-schema.js';
import { createSandbox, mariadb, mysql, type Sandbox } from '../../src/index.js';
import { findMariadbBinaries } from '../../src/presets/mariadb/server.js';
import { needServer } from './servers.js';
import { ROOT, tempDir, treeDigest, useTempHome } from './support.js';

useTempHome();
beforeEach((ctx) => needServer(ctx, () => findMariadbBinaries('mariadb')));

/** Runs SQL with the mariadb client inside the sandbox (MYSQL_* from the preset); stdout, or the error output. */
async function sql(sb: Sandbox, statement: string, args: string[] = []): Promise<string> {
  const result = await sb.exec('/bin/sh', ['-c', 'mariadb --default-character-set=utf8mb4 -N -u"$MYSQL_USER" "$@" "$MYSQL_DATABASE"', 'sh', ...args], {
    input: statement,
    all: true,
  });
  return result.exitCode === 0 ? result.stdout : `exit ${result.exitCode}: ${result.all}`;
}

describe('MariaDB preset', () => {
  const dir = join(ROOT, 'test/fixtures/mariadb');
  const shop = mariadb({
    database: 'shop',
    user: 'shop',
    password: 'shop-pw',
    rootPassword: 'root-pw',
    seed: { sql: [join(dir, 'schema.sql'), join(dir, 'seed.sql')] },
  });

  it('gives concurrent sandboxes their own server on one seeded data directory, which stays unchanged', async () => {
    await shop.prepare();
    const before = treeDigest(shop.layer!.path);
    const sandboxes = await Promise.all(Array.from({ length: 3 }, () => createSandbox({ workdir: 'none', presets: [shop] })));
    try {
      await Promise.all(sandboxes.map((sb, i) => sql(sb, `INSERT INTO orders (customer_id, total) VALUES (1, ${i + 1});`)));
      for (const [i, sb] of sandboxes.entries()) {
        expect(await sql(sb, 'SELECT count(*), max(total) FROM orders;')).toBe(`4\t${Math.max(30, i + 1)}.00`);
        expect(await sql(sb, 'SELECT name FROM customers WHERE id = 2;')).toBe('Zoë 🎉');
        expect(sb.env.DATABASE_URL).toBe('mysql://shop:shop-pw@127.0.0.1:3306/shop');
        expect(await sql(sb, "SELECT concat(current_user(), ' ', @@port, ' ', database());")).toBe('shop@% 3306 shop');
      }
      // Only its own inserts: each sandbox has 3 seeded orders plus one.
      expect(await Promise.all(sandboxes.map((sb) => sql(sb, 'SELECT group_concat(total) FROM orders WHERE total < 4;')))).toEqual(['1.00', '2.00', '3.00']);
    } finally {
      await Promise.all(sandboxes.map((sb) => sb.dispose()));
    }
    expect(treeDigest(shop.layer!.path)).toBe(before);
  });

  it('has root behind its password, the user limited to its database, and the socket reachable from the host', async () => {
    await using sb = await createSandbox({ workdir: 'none', presets: [shop] });
    const root = (password: string) =>
      sb.exec('/bin/sh', ['-c', `MYSQL_PWD=${password} mariadb -N -uroot -e "SELECT count(*) FROM mysql.user WHERE user = 'shop'"`], { all: true });
    expect((await root('root-pw')).stdout).toBe('1');
    expect((await root('wrong')).all).toMatch(/Access denied for user 'root'@'127.0.0.1'/);
    expect(await sql(sb, 'CREATE DATABASE other;')).toMatch(/Access denied for user 'shop'/);
    // The host's own client, through the socket in the bound host directory.
    const host = spawnSync(
      'mariadb',
      ['--no-defaults', `--socket=${sb.env.MYSQL_UNIX_PORT}`, '-ushop', '-pshop-pw', '-N', 'shop', '-e', 'SELECT count(*) FROM customers'],
      {
        encoding: 'utf8',
      },
    );
    expect(host.stderr).toBe('');
    expect(host.stdout.trim()).toBe('3');
  });

  it("keeps MariaDB's defaults where tests notice them, and takes settings", async () => {
    await using sb = await createSandbox({ workdir: 'none', presets: [shop] });
    expect(await sql(sb, 'SELECT @@max_connections, @@character_set_server, @@autocommit, @@lower_case_table_names;')).toBe('151\tutf8mb4\t1\t0');
    expect(await sql(sb, 'SELECT @@sql_mode;')).toMatch(/STRICT_TRANS_TABLES/);
    expect(await sql(sb, "INSERT INTO customers (name) VALUES ('a name longer than forty characters, refused');")).toMatch(/Data too long/);
    const ansi = mariadb({ settings: { sql_mode: 'ANSI', 'max-connections': 20 } });
    await ansi.prepare();
    await using other = await createSandbox({ workdir: 'none', presets: [ansi] });
    expect(await sql(other, 'SELECT @@sql_mode, @@max_connections;')).toBe('REAL_AS_FLOAT,PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ANSI\t20');
    expect(other.env.DATABASE_URL).toBe('mysql://root@127.0.0.1:3306/app');
  });

  it('builds the data directory once per content; seed.command sees DATABASE_URL', async () => {
    await shop.prepare();
    const samePort = mariadb({
      database: 'shop',
      user: 'shop',
      password: 'shop-pw',
      rootPassword: 'root-pw',
      port: 3307,
      seed: { sql: [join(dir, 'schema.sql'), join(dir, 'seed.sql')] },
    });
    expect((await samePort.prepare()).cached).toBe(true);
    expect(samePort.layer!.digest).toBe(shop.layer!.digest);
    const work = tempDir();
    try {
      writeFileSync(
        join(work.path, 'seed.sh'),
        'mariadb -u"$MYSQL_USER" "$MYSQL_DATABASE" -e "CREATE TABLE marks (url varchar(100)); INSERT INTO marks VALUES (\'$DATABASE_URL\')"\n',
      );
      const seeded = mariadb({ baseDir: work.path, port: 3310, seed: { command: 'sh seed.sh', inputs: ['seed.sh'] } });
      await seeded.prepare();
      await using sb = await createSandbox({ workdir: 'none', presets: [seeded] });
      expect(await sql(sb, 'SELECT url FROM marks;')).toBe('mysql://root@127.0.0.1:3310/app');
    } finally {
      work.remove();
    }
  });

  it('lets the caller override and omit exports; mysql() is the same preset under its own name', async () => {
    const db = mysql({ omitEnv: ['MYSQL_PWD'], user: 'app', password: 'pw' });
    await db.prepare();
    expect(db.name).toBe('mysql');
    await using sb = await createSandbox({ workdir: 'none', presets: [db], env: { MYSQL_DATABASE: 'mine' } });
    expect((await sb.exec('/bin/sh', ['-c', 'echo "$MYSQL_DATABASE ${MYSQL_PWD-unset} $MYSQL_PASSWORD"'])).stdout).toBe('mine unset pw');
    expect(sb.services.map((service) => service.spec.name)).toEqual(['mysql']);
  });

  it('is configurable as data in a config file, paths relative to it', async () => {
    const parsed = parsePresets([{ mariadb: { database: 'shop', seed: { sql: ['mariadb/schema.sql'] } } }]);
    if (!('entries' in parsed)) throw new Error(parsed.error);
    const [preset] = instantiatePresets(parsed.entries, join(ROOT, 'test/fixtures'));
    await using sb = await createSandbox({ workdir: 'none', presets: [preset!] });
    expect(await sql(sb, 'SELECT count(*) FROM customers;')).toBe('0');
    expect(parsePresets([{ mysql: { rootpassword: 'x' } }])).toEqual({ error: expect.stringMatching(/presets\.0\.mysql.*rootpassword/) });
  });

  it('says in one line what failed', async () => {
    const work = tempDir();
    try {
      writeFileSync(join(work.path, 'bad.sql'), 'CREATE TABLE x (;');
      await expect(mariadb({ baseDir: work.path, seed: { sql: ['bad.sql'] } }).prepare()).rejects.toThrow(
        /mariadb preset: seed bad.sql failed \(exit 1\):\n.*ERROR 1064 \(42000\) at line 1/s,
      );
      await expect(mariadb({ baseDir: work.path, seed: { sql: ['none.sql'] } }).prepare()).rejects.toThrow(
        /mariadb preset: seed.sql .*none.sql: no such file \(relative to .*\); fix the path/,
      );
    } finally {
      work.remove();
    }
    expect(() => mariadb({ settings: { bind_address: '0.0.0.0' } })).toThrow(
      'mariadb preset: settings.bind_address is set by the preset (the server listens on 127.0.0.1 in each sandbox (its own loopback)); remove it',
    );
    expect(() => mysql({ user: "o'brien" })).toThrow(/mysql preset: 'o'brien' is not a plain name/);
    await expect(mariadb({ bin: '/nonexistent/mariadbd' }).prepare()).rejects.toThrow('mariadb preset: bin /nonexistent/mariadbd is not an executable file');
  });
});
