// The Redis preset against a real redis-server: seeded data in a cached
// layer, one server per sandbox on its own loopback, the host through the
// socket, seeds from commands, an RDB and an AOF, errors in one line.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { instantiatePresets, parsePresets } from '../../src/config/presets-schema.js';
import { createSandbox, redis } from '../../src/index.js';
import { toProtocol } from '../../src/presets/redis/protocol.js';
import { findRedisBinaries } from '../../src/presets/redis/server.js';
import { RespClient } from './resp-client.js';
import { needServer } from './servers.js';
import { tempDir, treeDigest, useTempHome } from './support.js';

const home = useTempHome();

beforeEach((ctx) => needServer(ctx, () => findRedisBinaries()));

const sh = async (sb: { exec: (f: string, a: string[]) => Promise<{ stdout: string; exitCode: number | undefined }> }, script: string) =>
  (await sb.exec('/bin/sh', ['-c', script])).stdout;

describe('Redis preset', () => {
  const seeded = redis({
    password: 's3cret',
    seed: { commands: ['SET greeting "hello world"', ['HSET', 'user:1', 'name', 'Zoë 🎉'], 'RPUSH queue a b c', 'SET counter 10'] },
  });

  it('gives concurrent sandboxes their own server on one seeded layer, which stays unchanged', async () => {
    await seeded.prepare();
    const before = treeDigest(seeded.layer!.path);
    const sandboxes = await Promise.all(Array.from({ length: 4 }, () => createSandbox({ workdir: 'none', presets: [seeded] })));
    try {
      await Promise.all(sandboxes.map((sb, i) => sh(sb, `redis-cli -u "$REDIS_URL" --no-auth-warning INCRBY counter ${i + 1}`)));
      for (const [i, sb] of sandboxes.entries()) {
        expect(await sh(sb, 'redis-cli -u "$REDIS_URL" --no-auth-warning GET counter')).toBe(String(10 + i + 1));
        expect(await sh(sb, 'redis-cli -u "$REDIS_URL" --no-auth-warning GET greeting')).toBe('hello world');
        expect(await sh(sb, 'redis-cli -u "$REDIS_URL" --no-auth-warning HGET user:1 name')).toBe('Zoë 🎉');
        expect(await sh(sb, 'redis-cli -u "$REDIS_URL" --no-auth-warning LRANGE queue 0 -1')).toBe('a\nb\nc');
        // The password is required, on TCP and on the socket.
        expect(await sh(sb, 'redis-cli -h 127.0.0.1 -p 6379 GET greeting')).toMatch(/NOAUTH/);
        expect(await sh(sb, 'echo $REDIS_HOST $REDIS_PORT $REDIS_PASSWORD')).toBe('localhost 6379 s3cret');
      }
      expect(sandboxes[0]!.env.REDIS_URL).toBe('redis://default:s3cret@localhost:6379');
    } finally {
      await Promise.all(sandboxes.map((sb) => sb.dispose()));
    }
    expect(treeDigest(seeded.layer!.path)).toBe(before);
  });

  it('is reachable from the host through REDIS_SOCKET, and writes nothing to disk by default', async () => {
    await using sb = await createSandbox({ workdir: 'none', presets: [seeded] });
    const client = await RespClient.open(sb.env.REDIS_SOCKET!);
    try {
      expect(await client.send('GET', 'greeting')).toEqual(new Error('NOAUTH Authentication required.'));
      expect(await client.send('AUTH', 's3cret')).toBe('OK');
      expect(await client.send('GET', 'greeting')).toBe('hello world');
      expect(await client.send('CONFIG', 'GET', 'save')).toEqual(['save', '']);
      expect(await client.send('CONFIG', 'GET', 'appendonly')).toEqual(['appendonly', 'no']);
      await client.send('SET', 'written', 'yes');
      // Nothing but the seed's own dump.rdb in the data directory.
      expect(await sh(sb, 'ls /tmp/sandbox-run-redis/data')).toBe('dump.rdb');
    } finally {
      client.close();
    }
  });

  it('builds the data once per content; the port and password are not in the layer', async () => {
    await seeded.prepare();
    const same = redis({
      port: 6380,
      seed: { commands: ['SET greeting "hello world"', ['HSET', 'user:1', 'name', 'Zoë 🎉'], 'RPUSH queue a b c', 'SET counter 10'] },
    });
    expect((await same.prepare()).cached).toBe(true);
    expect(same.layer!.digest).toBe(seeded.layer!.digest);
    await using sb = await createSandbox({ workdir: 'none', presets: [same] });
    expect(await sh(sb, 'redis-cli -p 6380 GET greeting')).toBe('hello world');
    const other = redis({ seed: { commands: ['SET greeting bye'] } });
    await other.prepare();
    expect(other.layer!.digest).not.toBe(seeded.layer!.digest);
  });

  it('seeds from an RDB file, then an AOF, then commands and a shell command, in that order', async () => {
    await seeded.prepare();
    const dir = tempDir();
    try {
      writeFileSync(join(dir.path, 'more.aof'), toProtocol(['SET from-aof 1', 'SET counter 20']));
      writeFileSync(join(dir.path, 'seed.sh'), 'redis-cli -s "$REDIS_SOCKET" SET from-command "$REDIS_PORT"\n');
      const layered = redis({
        baseDir: dir.path,
        seed: {
          rdb: join(seeded.layer!.path, 'data/dump.rdb'),
          aof: 'more.aof',
          commands: ['INCR counter'],
          command: 'sh seed.sh',
          inputs: ['seed.sh'],
        },
      });
      await layered.prepare();
      await using sb = await createSandbox({ workdir: 'none', presets: [layered] });
      expect(await sh(sb, 'redis-cli MGET greeting from-aof counter from-command')).toBe('hello world\n1\n21\n6379');
      // seed.inputs: a changed file builds new data.
      writeFileSync(join(dir.path, 'seed.sh'), 'redis-cli -s "$REDIS_SOCKET" SET from-command changed\n');
      const changed = redis({ baseDir: dir.path, seed: { command: 'sh seed.sh', inputs: ['seed.sh'] } });
      expect((await changed.prepare()).cached).toBe(false);
      await using again = await createSandbox({ workdir: 'none', presets: [changed] });
      expect(await sh(again, 'redis-cli GET from-command')).toBe('changed');
    } finally {
      dir.remove();
    }
  });

  it("keeps Redis' own save points with persistence: true, and the user's env beats the exports", async () => {
    const kept = redis({ persistence: true, omitEnv: ['REDIS_PASSWORD'], config: { maxmemory: '32mb', 'maxmemory-policy': 'allkeys-lru' } });
    await kept.prepare();
    await using sb = await createSandbox({ workdir: 'none', presets: [kept], env: { REDIS_HOST: 'mine' } });
    expect(await sh(sb, 'redis-cli CONFIG GET save')).not.toBe('save\n');
    expect(await sh(sb, 'redis-cli CONFIG GET maxmemory-policy')).toBe('maxmemory-policy\nallkeys-lru');
    expect(await sh(sb, 'redis-cli SAVE && ls /tmp/sandbox-run-redis/data')).toBe('OK\ndump.rdb');
    expect(await sh(sb, 'echo "$REDIS_HOST|$REDIS_URL"')).toBe('mine|redis://localhost:6379');
    const omitted = redis({ omitEnv: ['REDIS_URL'] });
    await omitted.prepare();
    await using bare = await createSandbox({ workdir: 'none', presets: [omitted] });
    expect(await sh(bare, 'echo "${REDIS_URL-unset}"')).toBe('unset');
  });

  it('is configurable as data in a config file, paths relative to it', async () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir.path, 'seed.aof'), toProtocol(['SET from-config yes']));
      const parsed = parsePresets([{ redis: { port: 6390, seed: { aof: 'seed.aof', commands: [['SET', 'two', 'words here']] } } }]);
      if (!('entries' in parsed)) throw new Error(parsed.error);
      const [preset] = instantiatePresets(parsed.entries, dir.path);
      await using sb = await createSandbox({ workdir: 'none', presets: [preset!] });
      expect(await sh(sb, 'redis-cli -p "$REDIS_PORT" MGET from-config two')).toBe('yes\nwords here');
      expect(parsePresets([{ redis: { prot: 1 } }])).toEqual({ error: expect.stringMatching(/presets\.0\.redis.*prot/) });
      expect(parsePresets([{ rediss: {} }])).toEqual({ error: expect.stringMatching(/presets\.0: .*preset's name \(postgres, redis, valkey.*got rediss/) });
    } finally {
      dir.remove();
    }
  });

  it('says in one line what failed', async () => {
    await expect(redis({ seed: { commands: ['SET ok 1', 'HSET lonely'] } }).prepare()).rejects.toThrow(
      /redis preset: seed.commands failed \(exit 1\):\n.*wrong number of arguments for 'hset'/s,
    );
    expect(() => redis({ config: { port: 1 } })).toThrow("redis preset: config.port is set by the preset (use the preset's `port` option); remove it");
    expect(() => redis({ seed: { commands: ['SET "open'] } })).toThrow(/seed.commands 'SET "open': unbalanced quotes/);
    await expect(redis({ seed: { rdb: 'missing.rdb' } }).prepare()).rejects.toThrow(
      /redis preset: seed.rdb .*missing.rdb: no such file \(relative to .*\); fix the path/,
    );
    await expect(redis({ bin: '/nonexistent/redis-server' }).prepare()).rejects.toThrow(
      'redis preset: bin /nonexistent/redis-server is not an executable file',
    );
    expect(home.path).toBeTruthy();
  });
});
