// Reflink copy-up: with the store and the disk uppers on one XFS with
// reflink=1, a sandbox that opens a 64 MiB layer file for writing and
// changes one byte costs the filesystem a few blocks (the copy-up clones
// extents), not the file's size, and reads the file back right. The same on
// an XFS without reflink copies the whole file: the measurement can tell.
// Needs root to loop-mount the images; the sandboxes themselves run as root
// and, through runuser, as the unprivileged CI user.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPostgresBindir } from '../../src/presets/postgres/index.js';
import { removeTree } from '../../src/process/sweep.js';
import { NODE, ROOT } from './support.js';

const SCENARIO = join(ROOT, 'test/integration/reflink-scenario.ts');
const CI_USER = 'sandbox-ci';

const MKFS_XFS = ['/usr/sbin/mkfs.xfs', '/sbin/mkfs.xfs'].find((path) => existsSync(path));

function missing(): string | undefined {
  if (process.getuid!() !== 0) return 'needs root to loop-mount XFS images (CI runs it in its root pass)';
  if (!existsSync('/dev/loop-control')) return 'no loop devices here (/dev/loop-control)';
  if (!MKFS_XFS) return 'no mkfs.xfs: apt-get install xfsprogs';
  if (!['/usr/sbin/filefrag', '/sbin/filefrag'].some(existsSync)) return 'no filefrag: apt-get install e2fsprogs';
  return undefined;
}

function userIds(name: string): { uid: number; gid: number } | undefined {
  try {
    return { uid: Number(execFileSync('id', ['-u', name], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', name], { encoding: 'utf8' })) };
  } catch {
    return undefined;
  }
}

interface Report {
  reflinks: { dir: string } | null;
  fileBytes: number;
  expected: string;
  readBack: string;
  stderr: string;
  growth: number;
  upperCopies: number;
  sharedExtents: number;
  leftUppers: string[];
}

interface PostgresReport {
  fileBytes: number;
  preloaded: boolean;
  copiedByRead: boolean;
  count: string;
  changed: string;
  growth: number;
  upperCopies: number;
  sharedExtents: number;
  leftUppers: string[];
}

const hasPostgres = (() => {
  try {
    return existsSync(join(findPostgresBindir(), 'postgres'));
  } catch {
    return false;
  }
})();
const skipped = missing();

describe.skipIf(skipped)(`reflink copy-up of a disk upper (XFS on a loop device)${skipped ? `: skipped, ${skipped}` : ''}`, () => {
  const work = skipped ? '' : mkdtempSync('/var/tmp/sandbox-run-reflink-');
  const mounts: string[] = [];
  const ci = userIds(CI_USER);

  /** A 512 MiB sparse XFS image, loop-mounted; a home per user in it. */
  function xfs(name: string, reflink: 0 | 1): string {
    const image = join(work, `${name}.img`);
    const mnt = join(work, name);
    execFileSync('truncate', ['-s', '512M', image]);
    execFileSync(MKFS_XFS!, ['-q', '-m', `reflink=${reflink}`, image]);
    mkdirSync(mnt);
    execFileSync('mount', ['-o', 'loop', image, mnt]);
    mounts.push(mnt);
    return mnt;
  }

  function home(mnt: string, user: 'root' | 'ci', what: string): string {
    const dir = join(mnt, `home-${user}-${what}`);
    mkdirSync(dir);
    if (user === 'ci') chownSync(dir, ci!.uid, ci!.gid);
    return dir;
  }

  async function scenario<T = Report>(dir: string, user: 'root' | 'ci', which: 'file' | 'postgres' = 'file'): Promise<T> {
    const env = { PATH: process.env.PATH!, HOME: dir, SANDBOX_RUN_HOME: dir };
    const command = [NODE, '--import', 'tsx', SCENARIO, which];
    const result =
      user === 'root'
        ? await execa(command[0]!, command.slice(1), { cwd: ROOT, env, extendEnv: false, reject: false })
        : await execa('runuser', ['-u', CI_USER, '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...command], {
            cwd: ROOT,
            extendEnv: false,
            reject: false,
          });
    expect(result.stderr.replace(/^\(node:\d+\) .*Warning.*\n?(.*--trace-warnings.*\n?)?/gm, '')).toBe('');
    expect(result.exitCode).toBe(0);
    return JSON.parse(result.stdout) as T;
  }

  let reflinked = '';
  let plain = '';
  beforeAll(() => {
    chmodSync(work, 0o755); // the CI user walks through it to its home
    reflinked = xfs('reflink', 1);
    plain = xfs('plain', 0);
  });
  afterAll(() => {
    for (const mnt of mounts.reverse()) execFileSync('umount', [mnt]);
    removeTree(work);
  });

  const users = ['root', ...(ci ? ['ci' as const] : [])] as const;
  for (const user of users) {
    it(`as ${user === 'root' ? 'root' : CI_USER}: one changed byte of a 64 MiB file costs blocks, not the file, and reads back right`, async () => {
      const dir = home(reflinked, user, 'file');
      const report = await scenario(dir, user);
      expect(report.reflinks).toEqual({ dir: join(dir, 'uppers') });
      expect(report.stderr).toBe('');
      expect(report.readBack).toBe(report.expected);
      // The copy-up happened (the upper holds the file) and shares all but the written block with the layer.
      expect(report.upperCopies).toBe(1);
      expect(report.sharedExtents).toBeGreaterThan(0);
      expect(report.growth).toBeLessThan(report.fileBytes / 16);
      expect(report.leftUppers).toEqual([]);
    });
  }

  for (const user of users) {
    it.skipIf(!hasPostgres)(`as ${user === 'root' ? 'root' : CI_USER}: the postgres preset's data layer copies up by reflink`, async () => {
      const dir = home(reflinked, user, 'postgres');
      const report = await scenario<PostgresReport>(dir, user, 'postgres');
      expect({ count: report.count, changed: report.changed }).toEqual({ count: '200000', changed: '10' });
      // pg-lazy-write.so is preloaded on reflink hosts too: the SELECT copied (cloned) nothing up, only the UPDATE did.
      expect({ preloaded: report.preloaded, copiedByRead: report.copiedByRead }).toEqual({ preloaded: true, copiedByRead: false });
      // The table's file was copied up into the disk upper (PostgreSQL opens it read-write), as a clone.
      expect(report.upperCopies).toBe(1);
      expect(report.fileBytes).toBeGreaterThan(20 * 2 ** 20);
      expect(report.sharedExtents).toBeGreaterThan(0);
      expect(report.growth).toBeLessThan(report.fileBytes / 4);
      expect(report.leftUppers).toEqual([]);
    });
  }

  it('without reflink (XFS reflink=0) the probe says no and the same write copies the whole file', async () => {
    const dir = home(plain, 'root', 'file');
    const report = await scenario(dir, 'root');
    expect(report.reflinks).toBeNull();
    expect(report.readBack).toBe(report.expected);
    expect(report.upperCopies).toBe(1);
    expect(report.sharedExtents).toBe(0);
    expect(report.growth).toBeGreaterThanOrEqual(report.fileBytes);
    expect(report.leftUppers).toEqual([]);
  });
});
