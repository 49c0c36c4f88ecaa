// The library faces: run() for one command, Sandbox for a live one.
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, Sandbox, SandboxError } from '../../src/index.js';
import { NODE, processesWith, ROOT, tempDir, treeDigest } from './support.js';

const fixture = (name: string) => join(ROOT, 'test/fixtures', name);

describe('run()', () => {
  it('gives a copy-on-write working directory: writes are visible inside, gone after', async () => {
    const dir = tempDir();
    try {
      mkdirSync(join(dir.path, 'src'));
      writeFileSync(join(dir.path, 'src/a.txt'), 'a\n');
      const before = treeDigest(dir.path);
      const result = await run('/bin/sh', ['-c', 'echo b > src/a.txt; mkdir out; echo built > out/x; rm src/a.txt; ls; pwd'], { cwd: dir.path });
      expect(result.exitCode).toBe(0);
      expect(result.stdout.split('\n')).toEqual(['out', 'src', dir.path]);
      expect(treeDigest(dir.path)).toBe(before);
    } finally {
      dir.remove();
    }
  });

  it('reports the exit code and the signal that ended the command', async () => {
    expect((await run('/bin/sh', ['-c', 'exit 3'])).exitCode).toBe(3);
    const killed = await run('/bin/sh', ['-c', 'kill -INT $$']);
    expect(killed).toMatchObject({ exitCode: 130, signal: 'SIGINT' });
  });

  it('keeps the host loopback out of reach', async () => {
    const server = createServer((socket) => socket.end('host')).listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as { port: number }).port;
      const inside = await run(NODE, [fixture('connect.cjs'), String(port)]);
      expect(inside.stdout).toBe('ECONNREFUSED');
      const shared = await run(NODE, [fixture('connect.cjs'), String(port)], { network: 'host' });
      expect(shared.stdout).toBe('host');
    } finally {
      server.close();
    }
  });

  it('passes a Node IPC channel through the helper (json and advanced serialization)', async () => {
    for (const serialization of ['json', 'advanced'] as const) {
      const { spawn } = await import('../../src/index.js');
      const child = spawn(NODE, [fixture('ipc-child.cjs')], { ipc: true, serialization });
      await child.sendMessage!({ hello: serialization });
      const reply = (await child.getOneMessage!()) as { echo: unknown; pid: number };
      await child;
      expect(reply.echo).toEqual({ hello: serialization });
      expect(reply.pid).toBe(2); // the command is the sandbox's pid 2, under init
    }
  });

  it('rejects bad options with a SandboxError before starting anything', async () => {
    await expect(run('true', [], { overlays: [{ lower: '/no/such/dir', target: '/mnt' }] })).rejects.toThrow(/overlay source '\/no\/such\/dir' does not exist/);
    await expect(run('true', [], { binds: [{ source: '/tmp', target: 'relative' }] })).rejects.toBeInstanceOf(SandboxError);
    await expect(run('true', [], { tmpfsSize: 'lots' })).rejects.toThrow(/expected a size/);
  });
});

describe('Sandbox', () => {
  it('runs several processes in one live sandbox: shared files and pids, then disposes everything', async () => {
    const marker = `sandbox-api-marker-${process.pid}`;
    let pid: number;
    {
      await using sb = await Sandbox.create();
      pid = sb.pid;
      await sb.exec('/bin/sh', ['-c', 'echo hello > /tmp/shared']);
      const background = sb.spawn('/bin/sh', ['-c', `sleep 1000; : ${marker}`]);
      const { stdout } = await sb.exec('/bin/sh', ['-c', 'cat /tmp/shared; ls /proc | grep -c "^[0-9]"']);
      expect(stdout.split('\n')).toEqual(['hello', expect.stringMatching(/^[3-6]$/)]);
      expect(processesWith(marker)).toHaveLength(2); // the joining helper and the shell
      void background;
    }
    expect(processesWith(marker)).toEqual([]);
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('gives every sandbox its own 127.0.0.1:5432 at the same time', async () => {
    await using a = await Sandbox.create();
    await using b = await Sandbox.create();
    const servers = [a.spawn(NODE, [fixture('listen.cjs'), '5432', 'A']), b.spawn(NODE, [fixture('listen.cjs'), '5432', 'B'])];
    // Both report "listening" while the other is still bound.
    await Promise.all(servers.map((server) => once(server.stdout!, 'data')));
    expect((await a.exec(NODE, [fixture('connect.cjs'), '5432'])).stdout).toBe('A');
    expect((await b.exec(NODE, [fixture('connect.cjs'), '5432'])).stdout).toBe('B');
  });

  it('refuses to start processes once disposed', async () => {
    const sb = await Sandbox.create();
    await sb.dispose();
    expect(() => sb.spawn('true')).toThrow(/has ended/);
    await sb.dispose(); // idempotent
  });
});
