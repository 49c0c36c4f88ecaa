// A layer leased by another live process survives rm and prune; once that process dies (even by SIGKILL) it does not.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/index.js';
import { CLI, NODE, ROOT, tempDir } from './support.js';

const exec = promisify(execFile);

describe('leases across processes', () => {
  it('keeps a layer leased by a live process; a SIGKILLed holder lets it go', async () => {
    const dir = tempDir('sandbox-run-lease-');
    try {
      const src = join(dir.path, 'src');
      mkdirSync(src);
      writeFileSync(join(src, 'f'), 'x');
      const store = await openStore({ dir: join(dir.path, 'store') });
      const info = await store.snapshot(src, { name: 'held' });

      // Another process takes a lease and says so on stdout.
      const script = `const { openStore } = await import(${JSON.stringify(join(ROOT, 'dist/index.js'))});
        const store = await openStore({ dir: ${JSON.stringify(store.dir)} });
        await store.lease('held');
        console.log('leased');
        setInterval(() => {}, 1000);`;
      const holder = spawn(NODE, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = once(holder, 'exit');
      const [line] = (await once(createInterface({ input: holder.stdout! }), 'line')) as [string];
      expect(line).toBe('leased');

      const rm = await exec(NODE, [CLI, 'rm', 'held', '--store', store.dir]);
      expect(rm.stdout).toBe('untagged: held\n');
      expect(existsSync(info.path)).toBe(true);
      expect((await exec(NODE, [CLI, 'prune', '--store', store.dir])).stdout).not.toMatch(/deleted: sha256/);
      expect(existsSync(info.path)).toBe(true);

      holder.kill('SIGKILL');
      await exited;
      expect((await exec(NODE, [CLI, 'prune', '--store', store.dir])).stdout).toContain(`deleted: ${info.digest}`);
      expect(existsSync(info.path)).toBe(false);
    } finally {
      dir.remove();
    }
  });
});
