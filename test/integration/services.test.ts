// Services: readiness probes, failures with log tails, exports, a death while a command runs.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSandbox, SandboxError } from '../../src/index.js';
import { eventually, NODE, processesWith, ROOT, useTempHome } from './support.js';

const _home = useTempHome();
const fixture = (name: string) => join(ROOT, 'test/fixtures', name);

describe('services', () => {
  it('fails with one line and the log tail when a service exits before it is ready', async () => {
    const error = await createSandbox({
      workdir: 'none',
      services: [{ name: 'broken', command: ['/bin/sh', '-c', 'echo booting; echo "fatal: no config" >&2; exit 3'], ready: { tcp: 7000 } }],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxError);
    expect((error as Error).message).toBe(
      'service broken exited with code 3 before it was ready; last lines of /tmp/.sandbox-run/broken.log:\nbooting\nfatal: no config',
    );
  });

  it('lets what the user sets beat what services export, and unsetting remove it', async () => {
    const service = {
      name: 'exporter',
      command: ['/bin/sh', '-c', 'echo up; exec sleep 102'],
      ready: { log: 'up' },
      exports: { DATABASE_URL: 'from-service', OTHER: 'kept' },
    };
    const show = 'echo "${DATABASE_URL:-unset} ${OTHER:-unset}"';
    await using mine = await createSandbox({ workdir: 'none', services: [service], env: { DATABASE_URL: 'mine' } });
    expect((await mine.exec('/bin/sh', ['-c', show])).stdout).toBe('mine kept');
    expect(mine.env.DATABASE_URL).toBe('from-service'); // what the service exports, for the host side
    await using unset = await createSandbox({ workdir: 'none', services: [service], env: { DATABASE_URL: undefined } });
    expect((await unset.exec('/bin/sh', ['-c', show])).stdout).toBe('unset kept');
    // A process's own variables come last.
    expect((await unset.exec('/bin/sh', ['-c', show], { env: { DATABASE_URL: 'per-process' } })).stdout).toBe('per-process kept');
  });

  it('refuses a service name that cannot be a file name', async () => {
    await expect(createSandbox({ workdir: 'none', services: [{ name: 'a b;rm', command: ['true'] }] })).rejects.toMatchObject({ code: 'BAD_OPTIONS' });
  });

  it('fails when a service is not ready in time', async () => {
    const error = await createSandbox({
      workdir: 'none',
      services: [{ name: 'slow', command: ['/bin/sh', '-c', 'echo waiting; exec sleep 100'], ready: { tcp: 7001 }, startTimeoutMs: 300 }],
    }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/^service slow was not ready after 300 ms; last lines of \/tmp\/.sandbox-run\/slow.log:\nwaiting$/);
    await eventually(() => processesWith('exec sleep 100').length === 0, 2000, 'the slow service to be gone');
  });

  it('probes tcp ports, unix sockets, commands and log lines; offers exports; reports a service that dies', async () => {
    await using sb = await createSandbox({
      workdir: 'none',
      services: [
        { name: 'web', command: [NODE, fixture('listen.cjs'), '8080', 'web'], ready: { tcp: 8080 }, exports: { WEB_URL: 'http://127.0.0.1:8080' } },
        { name: 'sock', command: [NODE, '-e', "require('node:net').createServer().listen('/tmp/s.sock')"], ready: { socket: '/tmp/s.sock' } },
        { name: 'logger', command: ['/bin/sh', '-c', 'echo "ready now"; exec sleep 100'], ready: { log: 'ready now' } },
        { name: 'checked', command: ['/bin/sh', '-c', 'touch /tmp/ok; exec sleep 101'], ready: { command: ['test', '-e', '/tmp/ok'] } },
      ],
    });
    expect(sb.env.WEB_URL).toBe('http://127.0.0.1:8080');
    expect((await sb.exec(NODE, [fixture('connect.cjs'), '8080'])).stdout).toBe('web');
    expect((await sb.exec('/bin/sh', ['-c', 'echo $WEB_URL'])).stdout).toBe('http://127.0.0.1:8080');
    // The port listens a moment before the fixture logs it: poll, don't race.
    await eventually(() => sb.services[0]!.logTail() === 'listening', 2000, 'web to log');
    expect(sb.services.map((s) => s.logTail())).toEqual(['listening', '', 'ready now', '']);
    const error = await sb.exec('/bin/sh', ['-c', 'pkill -f "slee[p] 101"; while pgrep -f "slee[p] 101" >/dev/null; do :; done']).catch((e: unknown) => e);
    expect((error as SandboxError).code).toBe('SERVICE_FAILED');
    expect((error as Error).message).toMatch(/^service checked exited with code 143 while the sandbox was in use/);
  });
});
