// The PostgreSQL preset's options against real PostgreSQL 15: SCRAM and roles, TLS with
// verify-full, hba, extensions, TCP vs socket, omitEnv, the errors, and presets in sandbox.config.json.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createSandbox, postgres, type Sandbox } from '../../src/index.js';
import { CLI, INSIDE_UID, NODE, ROOT, tempDir, useTempHome } from './support.js';

const home = useTempHome();
const fixture = (name: string) => join(ROOT, 'test/fixtures/pg', name);

type Answer = { rows?: Record<string, unknown>[]; error?: string; message?: string };

/** One query with node-postgres run inside the sandbox (TCP reaches only the sandbox's own loopback). */
async function inside(sb: Sandbox, config: string | object, sql: string): Promise<Answer> {
  const result = await sb.exec(NODE, [fixture('query.mjs'), typeof config === 'string' ? config : JSON.stringify(config), sql]);
  expect(result.exitCode, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Answer;
}

/** Files below `dir` (if it exists) whose content includes `text`. */
function filesWith(dir: string, text: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir, { recursive: true, encoding: 'utf8' });
  } catch {
    return [];
  }
  return names.map((name) => join(dir, name)).filter((path) => statSync(path).isFile() && readFileSync(path, 'utf8').includes(text));
}

async function hostQuery(url: string, sql: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

// One build for SCRAM, roles, TLS, hba, extensions and a seed that uses them.
const secure = {
  auth: 'scram-sha-256',
  password: 'su-secret',
  roles: [{ name: 'app_user', password: 'app pw/with:odd@chars', createdb: true }],
  ssl: true,
  // Plain TCP is refused: every TCP client must use TLS.
  hba: ['hostnossl all all 0.0.0.0/0 reject'],
  extensions: ['pgcrypto', 'uuid-ossp'],
  seed: { sql: [fixture('uuid-seed.sql')] },
} as const;

describe('PostgreSQL preset options', () => {
  const preset = postgres(secure);

  it('SCRAM: the superuser and a role log in over TCP with the right password only; DATABASE_URL carries it', async () => {
    await preset.prepare();
    await using sb = await createSandbox({ presets: [preset] });
    const url = new URL(sb.env.DATABASE_URL!);
    expect([url.hostname, decodeURIComponent(url.password), url.searchParams.get('sslmode')]).toEqual(['localhost', 'su-secret', 'verify-full']);
    expect(sb.env.PGHOST).toBe('localhost');
    const tls = { ca: sb.env.PGSSLROOTCERT };
    const as = (user: string, password: string) => ({ host: 'localhost', port: 5432, database: 'app', user, password, ssl: tls });
    expect(await inside(sb, as('app_user', 'wrong'), 'SELECT 1')).toMatchObject({ error: '28P01' });
    expect(await inside(sb, as('postgres', 'wrong'), 'SELECT 1')).toMatchObject({ error: '28P01' });
    expect(
      await inside(sb, as('app_user', 'app pw/with:odd@chars'), 'SELECT current_user AS u, rolcreatedb AS c FROM pg_roles WHERE rolname = current_user'),
    ).toEqual({
      rows: [{ u: 'app_user', c: true }],
    });
    expect(await inside(sb, sb.env.DATABASE_URL!, 'SELECT current_user AS u')).toEqual({ rows: [{ u: 'postgres' }] });
    // Stored as SCRAM hashes, in the layer.
    expect(await inside(sb, sb.env.DATABASE_URL!, "SELECT left(rolpassword, 13) AS p FROM pg_authid WHERE rolname = 'app_user'")).toEqual({
      rows: [{ p: 'SCRAM-SHA-256' }],
    });
    // psql inside gets PGPASSWORD and PGSSLMODE=verify-full.
    const psql = await sb.exec('psql', ['-tAc', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()']);
    expect([psql.stdout, psql.stderr]).toEqual(['t', '']);
  });

  it('TLS: verify-full against PGSSLROOTCERT for localhost and 127.0.0.1; no CA fails; plain TCP is refused by the hba entry', async () => {
    await preset.prepare();
    await using sb = await createSandbox({ presets: [preset] });
    const ca = sb.env.PGSSLROOTCERT!;
    expect(readFileSync(ca, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/); // readable on the host too
    const base = { port: 5432, database: 'app', user: 'postgres', password: 'su-secret' };
    for (const host of ['localhost', '127.0.0.1'])
      expect(
        await inside(sb, { ...base, host, ssl: { ca, rejectUnauthorized: true } }, 'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()'),
      ).toMatchObject({
        rows: [{ ssl: true, version: expect.stringMatching(/^TLSv1\.[23]$/) }],
      });
    expect(await inside(sb, { ...base, host: 'localhost', ssl: { rejectUnauthorized: true } }, 'SELECT 1')).toMatchObject({
      message: 'unable to verify the first certificate',
    });
    expect(await inside(sb, { ...base, host: 'localhost', ssl: false }, 'SELECT 1')).toMatchObject({
      message: expect.stringMatching(/rejects connection .* no encryption/),
    });
    // The key has the owner and mode PostgreSQL demands: the server's uid, 0600.
    const key = statSync(join(preset.cluster, 'data/server.key'));
    expect([key.mode & 0o777, key.uid]).toEqual([0o600, process.getuid!()]);
    expect((await sb.exec('stat', ['-c', '%u %a', '/tmp/sandbox-run-postgres/data/server.key'])).stdout).toBe(`${INSIDE_UID} 600`);
  });

  it('extensions are created before the seed, which used them', async () => {
    await preset.prepare();
    await using sb = await createSandbox({ presets: [preset] });
    const answer = await inside(
      sb,
      sb.env.DATABASE_URL!,
      "SELECT (SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension) AS ext, (SELECT count(*)::int FROM tokens) AS n",
    );
    expect(answer).toEqual({ rows: [{ ext: 'pgcrypto,plpgsql,uuid-ossp', n: 1 }] });
  });

  it("connect: 'socket' reaches the same server from the host; omitEnv leaves a variable out; the default layer name is the project's", async () => {
    const viaSocket = postgres({ ...secure, connect: 'socket', omitEnv: ['PGDATABASE'] });
    await viaSocket.prepare();
    await preset.prepare();
    expect(viaSocket.cluster).toBe(preset.cluster); // the same cached layer
    expect(viaSocket.layer!.names).toContainEqual(expect.stringMatching(new RegExp(`^${basename(ROOT)}-[0-9a-f]{8}/postgres-app$`)));
    await using sb = await createSandbox({ presets: [viaSocket] });
    expect(sb.env.PGHOST!.startsWith(home.path)).toBe(true);
    expect(sb.env.PGDATABASE).toBeUndefined();
    expect((await sb.exec('/bin/sh', ['-c', 'echo "${PGDATABASE-unset}"'])).stdout).toBe('unset');
    expect(await hostQuery(sb.env.DATABASE_URL!, 'SELECT current_database() AS db')).toEqual([{ db: 'app' }]);

    const omitted = postgres({ omitEnv: ['DATABASE_URL'] });
    await omitted.prepare();
    await using bare = await createSandbox({ presets: [omitted] });
    expect(bare.env.DATABASE_URL).toBeUndefined();
    expect((await bare.exec('/bin/sh', ['-c', 'echo "${DATABASE_URL-unset} $PGUSER"'])).stdout).toBe('unset postgres');
  });

  it('names a missing extension and the package to install, in one line', async () => {
    const missing = postgres({ extensions: ['pgcrypto', 'postgis', 'no_such_ext'] });
    const error = await missing.prepare().then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(
      new RegExp(
        [
          /^postgres preset: PostgreSQL 15 \(\/usr\/lib\/postgresql\/15\/bin\) has no extension 'postgis', 'no_such_ext'; /.source,
          /postgis: apt-get install postgresql-15-postgis-3; no_such_ext: install the package that provides it for PostgreSQL 15 .*$/.source,
        ].join(''),
      ),
    );
    expect(error?.message).not.toContain('\n');
  });

  it('refuses settings the command line overrides, unknown versions and bad hba entries, each in one line', async () => {
    for (const key of ['listen_addresses', 'port', 'unix_socket_directories'])
      expect(() => postgres({ settings: { [key]: '1' } })).toThrow(new RegExp(`^postgres preset: settings\\.${key} is set by the preset \\(.*\\); remove it$`));
    expect(() => postgres({ auth: 'md5' })).toThrow(/auth 'md5' needs a password/);
    await expect(postgres({ version: 16 }).prepare()).rejects.toThrow(
      /^postgres preset: PostgreSQL 16 is not installed \(installed: 15\); install it \(apt-get install postgresql-16, .*\) or set bindir$/,
    );
    await expect(postgres({ hba: ['host all all 127.0.0.1/32 nosuchmethod'] }).prepare()).rejects.toThrow(
      /^postgres preset: hba entry 'host all all 127\.0\.0\.1\/32 nosuchmethod': invalid authentication method "nosuchmethod"; fix the entry$/,
    );
  });

  it("max_connections is PostgreSQL's 100", async () => {
    const plain = postgres();
    await plain.prepare();
    await using sb = await createSandbox({ presets: [plain] });
    expect((await sb.exec('psql', ['-tAc', 'SHOW max_connections'])).stdout).toBe('100');
  });
});

describe('presets in sandbox.config.json', () => {
  it('builds a preset given as data, with the seed, inputs and TLS files relative to the config file', async () => {
    const project = tempDir();
    try {
      const dir = join(project.path, 'app');
      mkdirSync(join(dir, 'db/migrations'), { recursive: true });
      writeFileSync(join(dir, 'db/schema.sql'), "CREATE TABLE t (v text); INSERT INTO t VALUES ('from the config dir');");
      writeFileSync(join(dir, 'db/migrations/001.txt'), 'one');
      // TLS files brought by the project: the ones a self-signed build made.
      const tlsSource = postgres({ ssl: true, layer: 'tls-source' });
      await tlsSource.prepare();
      mkdirSync(join(dir, 'tls'));
      for (const name of ['server.crt', 'server.key', 'root.crt']) copyFileSync(join(tlsSource.cluster, 'data', name), join(dir, 'tls', name));
      const config = {
        presets: [
          {
            postgres: {
              database: 'shop',
              seed: { sql: ['db/schema.sql'], command: 'psql -c "INSERT INTO t VALUES (\'$(cat db/migrations/001.txt)\')"', inputs: ['db/migrations'] },
              ssl: { cert: 'tls/server.crt', key: 'tls/server.key', ca: 'tls/root.crt' },
              auth: 'password',
              password: 'pw',
            },
          },
        ],
      };
      writeFileSync(join(dir, 'sandbox.config.json'), JSON.stringify(config));
      // Loaded from elsewhere: paths still resolve against the config's directory.
      const { config: loaded } = await loadConfig(join(dir, 'sandbox.config.json'));
      const [db] = loaded.presets!;
      await using sb = await createSandbox({ workdir: 'none', presets: [db!] });
      expect(
        await inside(
          sb,
          sb.env.DATABASE_URL!,
          "SELECT string_agg(v, ',' ORDER BY v) AS v, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl FROM t",
        ),
      ).toEqual({
        rows: [{ v: 'from the config dir,one', ssl: true }],
      });

      // A missing input and a wrong key are one line each, naming the path or the key.
      writeFileSync(join(dir, 'sandbox.config.json'), JSON.stringify({ presets: [{ postgres: { seed: { inputs: ['db/nope/**'] } } }] }));
      const { config: broken } = await loadConfig(join(dir, 'sandbox.config.json'));
      await expect(broken.presets![0]!.prepare()).rejects.toThrow(
        `postgres preset: seed.inputs 'db/nope/**' matches no file (relative to ${dir}); fix the path or the glob`,
      );
      writeFileSync(join(dir, 'sandbox.config.json'), JSON.stringify({ presets: [{ postgres: { seed: { sql: ['db/missing.sql'] } } }] }));
      const { config: noSql } = await loadConfig(join(dir, 'sandbox.config.json'));
      await expect(noSql.presets![0]!.prepare()).rejects.toThrow(
        `postgres preset: seed.sql ${dir}/db/missing.sql: no such file (relative to ${dir}); fix the path`,
      );
      writeFileSync(join(dir, 'sandbox.config.json'), JSON.stringify({ presets: [{ postgres: { auth: 'scram', sed: {} } }] }));
      await expect(loadConfig(join(dir, 'sandbox.config.json'))).rejects.toThrow(
        /sandbox\.config\.json: presets\.0\.postgres\.auth: .*; presets\.0\.postgres: Unrecognized key: "sed"$/,
      );
      writeFileSync(join(dir, 'sandbox.config.json'), JSON.stringify({ presets: [{ postgres: { settings: { port: 5433 } } }] }));
      await expect(loadConfig(join(dir, 'sandbox.config.json'))).rejects.toThrow(/sandbox\.config\.json: postgres preset: settings\.port is set by the preset/);
    } finally {
      project.remove();
    }
  });

  it('sandbox-run build: built, then cached, then --force builds again', async () => {
    const project = tempDir();
    try {
      writeFileSync(join(project.path, 'seed.sql'), 'CREATE TABLE x (i int);');
      writeFileSync(join(project.path, 'sandbox.config.json'), JSON.stringify({ presets: [{ postgres: { seed: { sql: ['seed.sql'] } } }] }));
      const build = async (...args: string[]) =>
        (await promisify(execFile)(NODE, [CLI, 'build', ...args], { cwd: project.path, env: { ...process.env, SANDBOX_RUN_HOME: home.path } })).stdout;
      // prepare()'s description: the layer, its digest, and the copy-up the sandboxes get (pages here, with the libraries built).
      const name = `${basename(project.path)}-[0-9a-f]{8}/postgres-app sha256:[0-9a-f]{64}, copyUp (pages|reflink)`;
      expect(await build()).toMatch(new RegExp(`^\\[1/1\\] postgres: built ${name} in \\d+\\.\\ds\\n$`));
      expect(await build()).toMatch(new RegExp(`^\\[1/1\\] postgres: cached ${name}\\n$`));
      expect(await build('--force')).toMatch(new RegExp(`^\\[1/1\\] postgres: built ${name} in \\d+\\.\\ds\\n$`));
    } finally {
      project.remove();
    }
  });
});

describe('config loading', () => {
  it("keeps jiti's transpiled copy of a TypeScript config (secrets and all) in a private directory", async () => {
    const project = tempDir();
    try {
      const secret = `pw-${process.pid}-${Date.now()}`;
      writeFileSync(join(project.path, 'sandbox.config.ts'), `const env: Record<string, string> = { DB_PASSWORD: '${secret}' };\nexport default { env };\n`);
      const { config } = await loadConfig(join(project.path, 'sandbox.config.ts'));
      expect(config.env).toEqual({ DB_PASSWORD: secret });
      const cache = join(home.path, 'jiti');
      expect(statSync(cache).mode & 0o777).toBe(0o700);
      expect(filesWith(cache, secret).length).toBe(1);
      expect(filesWith('/tmp/jiti', secret)).toEqual([]);
    } finally {
      project.remove();
    }
  });
});
