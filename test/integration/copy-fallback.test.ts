// The fallback for kernels without overlayfs in user namespaces, forced with
// SANDBOX_RUN_OVERLAY=copy: same isolation, private copies, nothing left.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, Sandbox } from '../../src/index.js';
import { tempDir, treeDigest } from './support.js';

describe('copy fallback (SANDBOX_RUN_OVERLAY=copy)', () => {
  const home = tempDir('sandbox-run-home-');
  const project = tempDir();
  const layer = tempDir();
  const copies = join(home.path, 'copies');
  beforeAll(() => {
    process.env.SANDBOX_RUN_OVERLAY = 'copy';
    process.env.SANDBOX_RUN_HOME = home.path;
    writeFileSync(join(project.path, 'src.txt'), 'project\n');
    mkdirSync(join(layer.path, 'data'), { mode: 0o700 });
    writeFileSync(join(layer.path, 'data', 'seed.txt'), 'seed\n');
  });
  afterAll(() => {
    delete process.env.SANDBOX_RUN_OVERLAY;
    delete process.env.SANDBOX_RUN_HOME;
    for (const dir of [home, project, layer]) dir.remove();
  });

  it('gives each sandbox private copies and removes them afterwards', async () => {
    const before = { project: treeDigest(project.path), layer: treeDigest(layer.path) };
    const script =
      'echo changed > src.txt; echo new > /mnt/data/new.txt; cat src.txt /mnt/data/seed.txt; stat -c %a /mnt/data; grep -c " overlay " /proc/mounts';
    const results = await Promise.all(
      [1, 2].map(() => run('/bin/sh', ['-c', script], { cwd: project.path, overlays: [{ lower: layer.path, target: '/mnt' }] })),
    );
    for (const result of results) expect(result.stdout.split('\n')).toEqual(['changed', 'seed', '700', '0']);
    expect(treeDigest(project.path)).toBe(before.project);
    expect(treeDigest(layer.path)).toBe(before.layer);
    expect(existsSync(copies) ? readdirSync(copies) : []).toEqual([]);
  });

  it('works for live sandboxes too', async () => {
    {
      await using sb = await Sandbox.create({ cwd: project.path });
      await sb.exec('/bin/sh', ['-c', 'echo live > src.txt']);
      expect((await sb.exec('cat', ['src.txt'])).stdout).toBe('live');
      expect(readdirSync(copies)).toHaveLength(1);
    }
    expect(readdirSync(copies)).toEqual([]);
  });

  it('sweeps the copies of a runner that died', async () => {
    mkdirSync(join(copies, '999999999-dead-runner/workdir'), { recursive: true });
    await run('true', [], { cwd: project.path });
    expect(readdirSync(copies)).toEqual([]);
  });
});
