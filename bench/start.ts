// Sandbox start-to-exit of /bin/true, side by side with references, in one run.
//   npm run bench            (as the user you care about; root and non-root both work)
// Process-level rows are timed around spawnSync (fork+exec+wait, as a shell
// would); library rows around an async spawn to exit, as a test runner would.
import { type StdioOptions, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { helperPath } from '../src/helper/locate.js';
import { run } from '../src/index.js';
import { cgroup2Mount } from '../src/sandbox/cgroup.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 400);
const WARMUP = 30;

interface Row {
  name: string;
  median: number;
  p99: number;
}

function stats(name: string, samples: number[]): Row {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { name, median: at(0.5), p99: at(0.99) };
}

function timeSync(name: string, file: string, args: string[], stdio: StdioOptions = 'ignore'): Row {
  const samples: number[] = [];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const start = performance.now();
    const result = spawnSync(file, args, { stdio });
    if (result.status !== 0) throw new Error(`${name}: exit ${result.status} ${result.error ?? ''}`);
    if (i >= WARMUP) samples.push(performance.now() - start);
  }
  return stats(name, samples);
}

async function timeAsync(name: string, once: () => Promise<void>): Promise<Row> {
  const samples: number[] = [];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const start = performance.now();
    await once();
    if (i >= WARMUP) samples.push(performance.now() - start);
  }
  return stats(name, samples);
}

function nodeSpawnTrue(): Promise<void> {
  return new Promise((resolve, reject) =>
    spawn('/bin/true', { stdio: 'ignore' }).on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`)))),
  );
}

async function libraryTrue(): Promise<void> {
  const result = await run('/bin/true', [], { stdio: 'ignore' });
  if (result.exitCode !== 0) throw new Error(`exit ${result.exitCode}`);
}

async function throughput(concurrency: number, total: number): Promise<number> {
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < total) await libraryTrue();
    }),
  );
  return total / ((performance.now() - start) / 1000);
}

const helper = helperPath();
const bwrap = ['/usr/bin/bwrap', '/usr/local/bin/bwrap'].find((path) => existsSync(path));
const rows: Row[] = [];
rows.push(timeSync('fork+exec /bin/true', '/bin/true', []));
rows.push(timeSync('unshare -Urmpfn --mount-proc', 'unshare', ['-Urmpfn', '--mount-proc', '/bin/true']));
const bwrapRow = bwrap
  ? timeSync('bwrap --unshare-all (no overlay)', bwrap, [
      '--unshare-all',
      '--ro-bind',
      '/',
      '/',
      '--dev',
      '/dev',
      '--proc',
      '/proc',
      '--tmpfs',
      '/tmp',
      '/bin/true',
    ])
  : undefined;
if (bwrapRow) rows.push(bwrapRow);
// bubblewrap's answer to CVE-2017-5226 (a session of its own); sandbox-helper always does that.
const bwrapSessionRow = bwrap
  ? timeSync('bwrap --unshare-all --new-session', bwrap, [
      '--unshare-all',
      '--new-session',
      '--die-with-parent',
      '--ro-bind',
      '/',
      '/',
      '--dev',
      '/dev',
      '--proc',
      '/proc',
      '--tmpfs',
      '/tmp',
      '/bin/true',
    ])
  : undefined;
if (bwrapSessionRow) rows.push(bwrapSessionRow);
const helperArgv = ['--overlay', process.cwd(), process.cwd(), '--', '/bin/true'];
const helperRow = timeSync('sandbox-helper (all ns + net + overlay)', helper, helperArgv);
rows.push(helperRow);
// With a terminal on stdio the command gets a pty of its own, made inside and
// relayed by the helper. A pty master is a terminal too (isatty): it stands
// in for the caller's terminal without a terminal emulator in the loop.
const terminal = openSync('/dev/ptmx', 'r+');
const ptyRow = timeSync('sandbox-helper, stdio a terminal (own pty)', helper, helperArgv, [terminal, terminal, terminal]);
rows.push(ptyRow);
closeSync(terminal);
const spawnRow = await timeAsync('Node spawn(/bin/true)', nodeSpawnTrue);
rows.push(spawnRow);
const libraryRow = await timeAsync('library run(/bin/true)', libraryTrue);
rows.push(libraryRow);

// A cgroup per sandbox (mkdir, limits, clone3 into it, kill, rmdir): under
// $SANDBOX_RUN_CGROUP, or a scratch cgroup when root can make one.
const scratchCgroup =
  !process.env.SANDBOX_RUN_CGROUP && process.getuid!() === 0 && cgroup2Mount() ? join(cgroup2Mount()!, `sandbox-run-bench.${process.pid}`) : undefined;
if (scratchCgroup) mkdirSync(scratchCgroup);
const cgroupParent = process.env.SANDBOX_RUN_CGROUP ?? scratchCgroup;
let cgroupRow: Row | undefined;
if (cgroupParent) {
  cgroupRow = await timeAsync('library run(/bin/true), own cgroup', async () => {
    const result = await run('/bin/true', [], { stdio: 'ignore', cgroupParent });
    if (result.exitCode !== 0) throw new Error(`exit ${result.exitCode}`);
  });
  rows.push(cgroupRow);
}
if (scratchCgroup) rmdirSync(scratchCgroup);

const pad = (text: string, width: number) => text.padEnd(width);
console.log(`sandbox start-to-exit, ${RUNS} runs each (uid ${process.getuid!()})\n`);
console.log(`${pad('what', 46)}${pad('median ms', 12)}p99 ms`);
for (const row of rows) console.log(`${pad(row.name, 46)}${pad(row.median.toFixed(2), 12)}${row.p99.toFixed(2)}`);
console.log('');
if (bwrapRow) console.log(`helper / bwrap median:            ${(helperRow.median / bwrapRow.median).toFixed(2)}x (target <= 0.55x)`);
else console.log('helper / bwrap median:            bwrap not installed (apt-get install bubblewrap)');
if (bwrapSessionRow) console.log(`helper / bwrap --new-session:     ${(helperRow.median / bwrapSessionRow.median).toFixed(2)}x`);
console.log(`own pty / plain helper median:    ${(ptyRow.median / helperRow.median).toFixed(2)}x (+${(ptyRow.median - helperRow.median).toFixed(2)} ms)`);
console.log(`library / Node spawn median:      ${(libraryRow.median / spawnRow.median).toFixed(2)}x (target <= 2.5x)`);
if (cgroupRow) console.log(`own cgroup / library median:      ${(cgroupRow.median / libraryRow.median).toFixed(2)}x`);
else console.log('own cgroup / library median:      no cgroup v2 parent (set SANDBOX_RUN_CGROUP)');
for (const concurrency of [1, 8]) console.log(`sandboxes/second at ${concurrency} concurrent:  ${(await throughput(concurrency, 400)).toFixed(0)}`);
