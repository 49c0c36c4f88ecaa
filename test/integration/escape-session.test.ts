// The escape matrix, continued: the caller's terminal, process group and
// keyrings. A C probe (test/fixtures/escape-probe.c) plays both the hostile
// dependency inside and the terminal or keyring owner outside, because
// Node can reach neither TIOCSTI nor keyctl.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { buildFixture, CLI, NODE } from './support.js';

const probe = buildFixture('escape-probe');
const cli = (...args: string[]) => [NODE, CLI, '--workdir', 'none', ...args];

/** Runs argv, returns stdout and the exit code; stdin is /dev/null. */
function capture(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ stdout: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], env, detached: true });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout: stdout.replace(/\r/g, ''), code }));
  });
}

/** The driver's last line: what the sandbox left in the caller's terminal. */
function driverReport(stdout: string): Record<string, string> {
  const line = stdout.split('\n').find((l) => l.startsWith('[driver]')) ?? '';
  return Object.fromEntries([...line.matchAll(/(\S+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
}

describe('escape matrix: terminal, process group, keyring', () => {
  it('cannot push input into, reconfigure or take over the terminal sandbox-run was started from (interactive)', async () => {
    const { stdout } = await capture([probe, 'drive', '30', '100', '--', ...cli('--', probe, 'tty-attack')]);
    // Inside, the attack "works" on the sandbox's own pseudo-terminal ...
    expect(stdout).toContain('open /dev/tty: ok');
    // ... and nothing of it reaches the caller's.
    expect(driverReport(stdout)).toEqual({ exit: '0', pending: '0', 'termios-changed': '0', 'foreground-moved': '0' });
  });

  it('without a terminal on stdin, has no controlling terminal and cannot inject through an inherited one', async () => {
    const command = `${cli('--', probe, 'tty-attack')
      .map((a) => `'${a}'`)
      .join(' ')} </dev/null`;
    const { stdout } = await capture([probe, 'drive', '30', '100', '--', '/bin/sh', '-c', command]);
    expect(stdout).toContain('open /dev/tty: No such device or address');
    expect(stdout).toMatch(/tiocsti fd1: Operation not permitted/);
    expect(driverReport(stdout)).toEqual({ exit: '0', pending: '0', 'termios-changed': '0', 'foreground-moved': '0' });
  });

  it('still runs an interactive command: its own terminal, window size changes, Ctrl-C and Ctrl-Z delivered', async () => {
    const driver = spawn(probe, ['drive', '30', '100', '--', ...cli('--', probe, 'signals')], { stdio: ['pipe', 'pipe', 'inherit'] });
    let stdout = '';
    const waiters: { text: string; resolve: () => void }[] = [];
    driver.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString().replace(/\r/g, '');
      for (const w of waiters.splice(0)) stdout.includes(w.text) ? w.resolve() : waiters.push(w);
    });
    const seen = (text: string) => new Promise<void>((resolve) => (stdout.includes(text) ? resolve() : waiters.push({ text, resolve })));
    const closed = new Promise<number | null>((resolve) => driver.on('close', resolve));
    try {
      await seen('ready size=30x100');
      driver.stdin.write('\x03');
      await seen('got SIGINT');
      driver.stdin.write('\x1a');
      await seen('got SIGTSTP');
      driver.kill('SIGUSR1'); // the driver grows the terminal by a row and a column
      await seen('got SIGWINCH size=31x101');
      expect(await closed).toBe(0);
      expect(driverReport(stdout)).toMatchObject({ exit: '0', pending: '0', 'termios-changed': '0' });
    } finally {
      driver.kill('SIGKILL');
      if (!driverReport(stdout).exit) console.error(`terminal driver output so far:\n${stdout}`);
    }
  });

  it('cannot signal or stop the runner, the caller or its siblings through the process group', async () => {
    // The shell stands for the caller: it shares the runner's process group
    // (detached: a group of its own, so the test runner is not at stake).
    const script = `${cli('--parallel=3', '--replicate', '--output', 'quiet', '--', probe, 'group-attack', '$$')
      .map((a) => (a === '$$' ? a : `'${a}'`))
      .join(' ')} >/dev/null; echo "runner exit $?"; echo caller-alive`;
    const each = await capture(['/bin/sh', '-c', script]);
    expect(each.stdout).toBe('runner exit 0\ncaller-alive\n');
    const single = await capture([
      '/bin/sh',
      '-c',
      `${cli('--', probe, 'group-attack', '$$')
        .map((a) => (a === '$$' ? a : `'${a}'`))
        .join(' ')}; echo "exit $?"`,
    ]);
    expect(single.stdout).toMatch(/kill\(-host, 15\): No such process/);
    expect(single.stdout).toMatch(/^sid=2 pgid=2$/m); // the command leads a session of its own
    expect(single.stdout).toMatch(/exit 0\n$/);
  });

  it("cannot read or add to the caller's session keyring", async () => {
    const { stdout } = await capture([probe, 'keyring-owner', '--', ...cli('--', probe, 'keyring-attack')]);
    expect(stdout).toMatch(/^read: (Permission denied|Required key not available)$/m);
    expect(stdout).toMatch(/^search: Required key not available$/m);
    expect(stdout).toContain('add: ok'); // into its own, fresh keyring ...
    expect(stdout).toContain('[owner] exit=0 keys-in-session=1'); // ... not the caller's
  });

  it('holds for joined processes too (services, warm pools, Vitest workers)', async () => {
    const { Sandbox } = await import('../../src/index.js');
    await using sb = await Sandbox.create({ workdir: 'none' });
    const { stdout } = await sb.exec(probe, ['group-attack', String(process.pid)]);
    expect(stdout).toMatch(/kill\(-host, 15\): No such process/);
    const caps = await sb.exec('/bin/sh', ['-c', 'grep -E "^Cap(Eff|Prm|Bnd|Amb)" /proc/self/status | tr -d "\\t"; cut -d" " -f6 /proc/self/stat']);
    expect(caps.stdout.split('\n').map((l) => l.trim())).toEqual([
      'CapPrm:0000000000000000',
      'CapEff:0000000000000000',
      'CapBnd:0000000000000000',
      'CapAmb:0000000000000000',
      expect.stringMatching(/^\d+$/),
    ]);
    // The joined process leads its own session, not init's (1) and not the caller's.
    expect(Number(caps.stdout.trim().split('\n').at(-1))).toBeGreaterThan(1);
  });
});
