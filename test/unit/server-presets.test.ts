// Pure parts of the Redis and MariaDB presets: redis-cli quoting to the
// Redis protocol, option checks, the variables, the accounts SQL.
import { describe, expect, it } from 'vitest';
import { mariadbEnv } from '../../src/presets/mariadb/connection.js';
import { accountsSql, serverSettings } from '../../src/presets/mariadb/datadir.js';
import { mariadb } from '../../src/presets/mariadb/index.js';
import { redis, redisEnv } from '../../src/presets/redis/index.js';
import { splitCommandLine, toProtocol } from '../../src/presets/redis/protocol.js';

const words = (line: string) => splitCommandLine(line).map((arg) => arg.toString('utf8'));

describe('redis-cli quoting', () => {
  it('splits words, double quotes with escapes, single quotes', () => {
    expect(words('SET  greeting "hello world"')).toEqual(['SET', 'greeting', 'hello world']);
    expect(words(`SET k "a\\nb\\t\\"c\\""`)).toEqual(['SET', 'k', 'a\nb\t"c"']);
    expect(words(`SET k 'it\\'s'`)).toEqual(['SET', 'k', "it's"]);
    expect(words('SET name Zoë🎉')).toEqual(['SET', 'name', 'Zoë🎉']);
    expect(words('SET empty ""')).toEqual(['SET', 'empty', '']);
  });

  it('keeps \\xHH as one raw byte', () => {
    expect(splitCommandLine('SET k "\\xff\\x00"')[2]).toEqual(Buffer.from([0xff, 0x00]));
  });

  it('refuses unbalanced or glued quotes in one line', () => {
    expect(() => splitCommandLine('SET "open')).toThrow(`redis preset: seed.commands 'SET "open': unbalanced quotes; fix the quoting`);
    expect(() => splitCommandLine('SET "a"b')).toThrow(/a closing quote must be followed by a space/);
  });

  it('encodes commands as RESP arrays of bulk strings, byte lengths', () => {
    expect(toProtocol(['SET k "é"', ['GET', 'k']]).toString()).toBe('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\né\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n');
  });
});

describe('preset options and variables', () => {
  it('refuses what the servers would ignore or fail on', () => {
    expect(() => redis({ config: { Dir: '/x' } })).toThrow('redis preset: config.Dir is set by the preset (the data lives in the layer); remove it');
    expect(() => redis({ password: 'two words' })).toThrow(/password must be non-empty, without spaces/);
    expect(() => redis({ image: 'redis:7', bin: '/usr/bin/redis-server' })).toThrow('redis preset: set image or bin, not both');
    expect(() => redis({ seed: { commands: ['   '] } })).toThrow('redis preset: seed.commands: an empty command');
    expect(() => mariadb({ settings: { datadir: '/x' } })).toThrow(/settings.datadir is set by the preset/);
    expect(() => mariadb({ port: 0 })).toThrow('mariadb preset: port 0 is not a TCP port');
    expect(() => mariadb({ password: 'a', rootPassword: 'b' })).toThrow(/user is root: set its password with `password` or `rootPassword`/);
  });

  it('exports URLs with encoded passwords and omits what is asked', () => {
    expect(redisEnv(6379, 'p@ss/word', '/s/redis.sock', [])).toEqual({
      REDIS_URL: 'redis://default:p%40ss%2Fword@localhost:6379',
      REDIS_HOST: 'localhost',
      REDIS_PORT: '6379',
      REDIS_PASSWORD: 'p@ss/word',
      REDIS_SOCKET: '/s/redis.sock',
    });
    const env = mariadbEnv({ user: 'app', password: 'p w', database: 'shop', port: 3307, socket: '/s/mysqld.sock', omit: ['MYSQL_PWD'] });
    expect(env.DATABASE_URL).toBe('mysql://app:p%20w@127.0.0.1:3307/shop');
    expect(env).toMatchObject({ MYSQL_HOST: '127.0.0.1', MYSQL_TCP_PORT: '3307', MYSQL_UNIX_PORT: '/s/mysqld.sock', MYSQL_PASSWORD: 'p w' });
    expect(env.MYSQL_PWD).toBeUndefined();
  });

  it('creates the user with privileges on its database only, and quotes what it is given', () => {
    const sql = accountsSql({ database: 'shop', user: 'app', password: "it's", rootPassword: undefined });
    expect(sql).toContain("CREATE USER 'app'@'%' IDENTIFIED BY 'it''s';");
    expect(sql).toContain("GRANT ALL PRIVILEGES ON `shop`.* TO 'app'@'%';");
    expect(sql).not.toContain("ALTER USER IF EXISTS 'root'");
    expect(accountsSql({ database: 'app', user: 'root', password: 'r', rootPassword: undefined })).toContain(
      "ALTER USER IF EXISTS 'root'@'127.0.0.1' IDENTIFIED BY 'r';",
    );
  });

  it("lets the user's settings win over the test settings, whatever the spelling", () => {
    expect(serverSettings({ innodb_buffer_pool_size: '64M' })['innodb-buffer-pool-size']).toBe('64M');
  });
});
