import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcNames } from '../../src/sandbox/unmapped.js';
import { CLI, NODE, tempDir } from './support.js';

// A file the caller owns whose group is another one: root can make it with
// any gid; an unprivileged user only with a supplementary group of its own
// (.ci/run puts sandbox-ci in one, as a group-shared checkout would).
const uid = process.getuid!();
const gid = process.getgid!();
const foreignGid = uid === 0 ? 4242 : process.getgroups!().find((group) => group !== gid);
const names = etcNames();
const me = names.group(gid);

describe.skipIf(foreignGid === undefined)('files the sandbox cannot map (needs root or a supplementary group)', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeAll(() => {
    dir = tempDir('sandbox-run-unmapped-');
    writeFileSync(join(dir.path, 'mine.txt'), 'mine\n');
    writeFileSync(join(dir.path, 'shared.txt'), 'shared\n');
    chownSync(join(dir.path, 'shared.txt'), uid, foreignGid!);
  });
  afterAll(() => dir?.remove());
  const owner = `${names.user(uid)}:${names.group(foreignGid!)}`;
  const cli = (args: string[], cwd?: string) => execa(NODE, [CLI, ...args], { cwd: cwd ?? dir.path, reject: false });

  it('names the file, its owner and the fix in the failed job summary', async () => {
    const result = await cli(['--parallel', '1', '--output', 'quiet', '--', 'sh', '-c', 'echo ok >> mine.txt && echo x >> shared.txt']);
    expect(result.exitCode).toBe(1);
    const summary = result.stdout.split('\n').find((line) => line.startsWith('#1: '));
    expect(summary).toBe(
      `#1: shared.txt is owned by ${owner}, but a sandbox maps only your own user and group (${names.user(uid)}:${me}), ` +
        `so writing it there fails with "Value too large for defined data type"; fix: chgrp ${me} ${join(dir.path, 'shared.txt')}, or run with --workdir rw`,
    );
  });

  it('says so on stderr after a single failed run, and the fix it names works', async () => {
    const failed = await cli(['--', 'sh', '-c', 'echo x >> shared.txt']);
    expect(failed.exitCode).not.toBe(0);
    expect(failed.stderr).toMatch(/Value too large for defined data type/);
    expect(failed.stderr).toContain(`sandbox-run: shared.txt is owned by ${owner}`);
    expect((await cli(['--workdir', 'rw', '--', 'sh', '-c', 'echo x >> shared.txt'])).exitCode).toBe(0);
  });

  it('names a directory of another group first, with chgrp -R', async () => {
    const tree = tempDir('sandbox-run-unmapped-dir-');
    try {
      mkdirSync(join(tree.path, 'data'));
      writeFileSync(join(tree.path, 'data', 'a'), 'a\n');
      chownSync(join(tree.path, 'data'), uid, foreignGid!);
      const result = await cli(['--parallel', '1', '--output', 'quiet', '--', 'sh', '-c', 'echo x >> data/a'], tree.path);
      expect(result.stdout).toContain(`#1: data is owned by ${names.user(uid)}:${names.group(foreignGid!)}`);
      expect(result.stdout).toContain(`fix: chgrp -R ${me} ${join(tree.path, 'data')}, or run with --workdir rw`);
    } finally {
      tree.remove();
    }
  });

  it('doctor --cwd finds the file and exits 1; a clean tree passes', async () => {
    const doctor = await cli(['doctor', '--cwd', dir.path]);
    expect(doctor.exitCode).toBe(1);
    expect(doctor.stdout).toMatch(new RegExp(`FAIL {2}files the sandbox can map: shared\\.txt is owned by ${owner}`));
    expect(doctor.stdout).toContain(`fix: chgrp ${me} ${join(dir.path, 'shared.txt')}, or run with --workdir rw`);
    const clean = tempDir('sandbox-run-unmapped-clean-');
    try {
      writeFileSync(join(clean.path, 'f'), 'f\n');
      const json = await cli(['doctor', '--json', '--cwd', clean.path]);
      const check = (JSON.parse(json.stdout) as { name: string; status: string }[]).find((c) => c.name === 'files the sandbox can map');
      expect(check?.status).toBe('pass');
    } finally {
      clean.remove();
    }
  });
});

describe('a failure for another reason in a clean tree', () => {
  it('gets no ownership hint', async () => {
    const dir = tempDir('sandbox-run-unmapped-clean-');
    try {
      const result = await execa(
        NODE,
        [CLI, '--parallel', '1', '--output', 'quiet', '--', 'sh', '-c', 'echo "Value too large for defined data type" >&2; exit 3'],
        { cwd: dir.path, reject: false },
      );
      expect(result.exitCode).toBe(1);
      expect(result.stdout).not.toMatch(/is owned by/);
    } finally {
      dir.remove();
    }
  });
});
