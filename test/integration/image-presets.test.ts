// Presets whose server runs from an image (no server used from the host):
// redis({ image }), mariadb({ image }), postgres({ image }) and the generic
// imageService, against images the test builds from the host's packages.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSandbox, imageService, mariadb, openStore, postgres, redis, type Sandbox } from '../../src/index.js';
import { findMariadbBinaries } from '../../src/presets/mariadb/server.js';
import { findRedisBinaries } from '../../src/presets/redis/server.js';
import { mariadbImage, PG_BIN, postgresImage, redisImage } from './server-images.js';
import { needServer } from './servers.js';
import { tempDir, useTempHome } from './support.js';

useTempHome();
const sh = async (sb: Sandbox, script: string) => (await sb.exec('/bin/sh', ['-c', script], { all: true })).all ?? '';

/** The root directory of a process of the sandbox, as its /proc shows it: the image mount for a server chrooted into it. */
const rootOf = (sb: Sandbox, pid: string) => sh(sb, `readlink /proc/${pid.trim()}/root`);

function hostPackages(): void {
  if (!existsSync('/usr/bin/busybox')) throw new Error('/usr/bin/busybox not found: apt-get install busybox-static');
  findRedisBinaries();
  findMariadbBinaries('mariadb');
  if (!existsSync(`${PG_BIN}/postgres`)) throw new Error(`${PG_BIN}/postgres not found: apt-get install postgresql-15`);
}

let images: { redis: string; mariadb: string; postgres: string } | undefined;
let work: ReturnType<typeof tempDir> | undefined;
afterAll(() => work?.remove());
beforeEach((ctx) => needServer(ctx, hostPackages));
beforeAll(async () => {
  try {
    hostPackages();
  } catch {
    return; // each test says why it is skipped
  }
  const store = await openStore();
  work = tempDir();
  images = {
    redis: await redisImage(store, work.path),
    mariadb: await mariadbImage(store, work.path),
    postgres: await postgresImage(store, work.path),
  };
}, 120_000);

describe('presets from images', () => {
  it('redis({ image }) seeds and serves from the image', async () => {
    const cache = redis({ image: images!.redis, password: 'pw', seed: { commands: ['SET greeting "from the image"'] } });
    const prepared = await cache.prepare();
    expect(prepared.cached).toBe(false);
    expect(cache.binaries).toMatchObject({ server: '/usr/bin/redis-server', cli: '/usr/bin/redis-cli', root: '/run/images/redis' });
    await using sb = await createSandbox({ workdir: 'none', presets: [cache] });
    expect(await sh(sb, 'redis-cli -u "$REDIS_URL" --no-auth-warning GET greeting')).toBe('from the image');
    const pid = await sh(sb, 'redis-cli -u "$REDIS_URL" --no-auth-warning INFO server | sed -n "s/^process_id:\\([0-9]*\\).*/\\1/p"');
    expect(await rootOf(sb, pid)).toBe('/run/images/redis');
    // The image's own client, chrooted too; the socket is the same path there.
    expect((await sb.exec('redis-cli', ['-s', sb.env.REDIS_SOCKET!, '-a', 'pw', '--no-auth-warning', 'PING'], { root: '/run/images/redis' })).stdout).toBe(
      'PONG',
    );
    expect((await redis({ image: images!.redis, password: 'pw', seed: { commands: ['SET greeting "from the image"'] } }).prepare()).cached).toBe(true);
  });

  it('mariadb({ image }) initialises, seeds and serves from the image', async () => {
    const db = mariadb({ image: images!.mariadb, user: 'shop', password: 'pw', database: 'shop' });
    await db.prepare();
    expect(db.binaries).toMatchObject({ flavor: 'mariadb', server: '/usr/sbin/mariadbd', root: '/run/images/mariadb' });
    await using sb = await createSandbox({ workdir: 'none', presets: [db] });
    const pid = await sh(sb, 'mariadb -N -u"$MYSQL_USER" "$MYSQL_DATABASE" -e "CREATE TABLE t (x int); INSERT INTO t VALUES (7); SELECT @@pid_file"');
    expect(pid).toBe('/tmp/sandbox-run-mariadb-3306.pid');
    expect(await rootOf(sb, await sh(sb, 'cat /tmp/sandbox-run-mariadb-3306.pid'))).toBe('/run/images/mariadb');
    expect(await sh(sb, 'mariadb -N -u"$MYSQL_USER" -e "SELECT x FROM t" "$MYSQL_DATABASE"')).toBe('7');
  });

  it('postgres({ image }) builds its cluster and serves from the image', async () => {
    const pg = postgres({ image: images!.postgres, seed: { sql: [] }, database: 'shop' });
    await pg.prepare();
    await using sb = await createSandbox({ workdir: 'none', presets: [pg] });
    await sh(sb, 'psql -XAtqc "CREATE TABLE t AS SELECT 42 AS x"');
    // The postmaster's pid (a backend's ends with its connection).
    expect(await rootOf(sb, await sh(sb, 'head -1 /tmp/sandbox-run-postgres/data/postmaster.pid'))).toBe('/run/images/postgres');
    expect(await sh(sb, 'psql -XAtc "SELECT x FROM t"')).toBe('42');
  });

  it('imageService runs any image with its Cmd, Env and ExposedPorts, ready by port, log or command', async () => {
    const byPort = imageService({ image: images!.redis, command: ['redis-server', '--save', '', '--bind', '127.0.0.1'] });
    const byLog = imageService({
      image: images!.redis,
      name: 'cache',
      command: ['redis-server', '--port', '6380'],
      ports: [6380],
      ready: { log: /Ready to accept/ },
    });
    const byCommand = imageService({
      image: images!.redis,
      name: 'queue',
      command: ['redis-server', '--port', '6381'],
      ready: { command: ['redis-cli', '-p', '6381', 'ping'] },
    });
    await using sb = await createSandbox({ workdir: 'none', presets: [byPort, byLog, byCommand] });
    expect(sb.env).toMatchObject({ REDIS_HOST: '127.0.0.1', REDIS_PORT: '6379', CACHE_HOST: '127.0.0.1', CACHE_PORT: '6380' });
    expect(await sh(sb, 'redis-cli -p 6379 PING; redis-cli -p 6380 PING; redis-cli -p 6381 PING')).toBe('PONG\nPONG\nPONG');
    // The default command is the image's Cmd, run in its WorkingDir.
    const plain = imageService({ image: images!.redis });
    await using other = await createSandbox({ workdir: 'none', presets: [plain] });
    expect(await sh(other, 'redis-cli CONFIG GET dir')).toBe('dir\n/data');
  });

  it('names pull and import when the image is not in the store', async () => {
    await expect(redis({ image: 'redis:absent' }).prepare()).rejects.toThrow(/no image 'redis:absent' in the layer store .*sandbox-run pull redis:absent/);
    await expect(imageService({ image: 'nginx:absent' }).prepare()).rejects.toThrow(/sandbox-run pull nginx:absent/);
  });
});
