// What the runner itself costs per sandbox: peak resident memory and CPU of
// `sandbox-run --no-config --parallel N --each 't/*.sh' -- sh -c 'sleep 2'`
// with N items (default 50), against the same run with 1 item, so that the
// difference is what the sandboxes cost and not Node's start.
//   node --import tsx bench/runner-cost.ts                 (this checkout's dist)
//   VS=/tmp/before node --import tsx bench/runner-cost.ts  (another checkout too, run in turn)
// Figures per run: the runner's own CPU and max RSS (its getrusage, read at
// exit by a --import hook), and with children (helper, sh, sleep) as wait4
// reports them. BENCH_RUNS (default 3) rounds; medians printed.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const ITEMS = Number(process.env.BENCH_ITEMS ?? 50);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const scratch = mkdtempSync('/tmp/sandbox-run-cost-');
for (const [dir, count] of [
  ['many', ITEMS],
  ['one', 1],
] as const) {
  mkdirSync(join(scratch, dir, 't'), { recursive: true });
  for (let i = 1; i <= count; i++) writeFileSync(join(scratch, dir, 't', `${i}.sh`), 'true\n');
}
// Prints the runner's own rusage on its stderr as it exits.
const hook = join(scratch, 'usage.mjs');
writeFileSync(
  hook,
  "import { writeSync } from 'node:fs';\n" +
    "process.on('exit', () => { const u = process.resourceUsage(); writeSync(2, `\\nUSAGE ${u.userCPUTime + u.systemCPUTime} ${u.maxRSS}\\n`); });\n",
);

interface Sample {
  wallMs: number;
  selfCpuMs: number;
  selfRssMb: number;
  totalCpuMs: number;
}

/** One run of the CLI under a shell that reports the children's rusage (times) after it. */
function once(checkout: string, dir: string): Promise<Sample> {
  const cli = join(checkout, 'dist/cli/main.js');
  const script = `node --import ${hook} ${cli} --no-config --parallel ${ITEMS} --each 't/*.sh' -- sh -c 'sleep 2' >/dev/null; times`;
  return new Promise((done, fail) => {
    const started = performance.now();
    const child = spawn('/bin/bash', ['-c', script], { cwd: join(scratch, dir), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk));
    child.on('error', fail);
    child.on('close', () => {
      const usage = /USAGE (\d+) (\d+)/.exec(err);
      // bash `times`: second line = children's user and system time, e.g. "0m1.040s 0m0.350s".
      const children = out
        .trim()
        .split('\n')
        .at(-1)!
        .match(/(\d+)m([\d.]+)s/g);
      if (!usage || !children) return fail(new Error(`no figures from ${checkout}:\n${err}\n${out}`));
      const seconds = (t: string) => Number(t.split('m')[0]) * 60 + Number(t.split('m')[1]!.slice(0, -1));
      done({
        wallMs: performance.now() - started,
        selfCpuMs: Number(usage[1]) / 1000,
        selfRssMb: Number(usage[2]) / 1024,
        totalCpuMs: (seconds(children[0]!) + seconds(children[1]!)) * 1000,
      });
    });
  });
}

process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));

const median = (values: number[]) => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const checkouts = [ROOT, ...(process.env.VS ? [resolve(process.env.VS)] : [])];
const samples = new Map(checkouts.map((c) => [c, { many: [] as Sample[], one: [] as Sample[] }]));
// Interleaved: each round runs every checkout once, so drift hits all alike.
for (let round = 0; round < RUNS; round++)
  for (const checkout of checkouts) for (const dir of ['one', 'many'] as const) samples.get(checkout)![dir].push(await once(checkout, dir));

console.log(`${ITEMS} items, --parallel ${ITEMS}, sh -c 'sleep 2' each; medians of ${RUNS} interleaved rounds`);
console.log('checkout'.padEnd(28), 'wall s', ' runner RSS MB', ' runner CPU s', ' total CPU s', ' runner ms/sandbox', ' total ms/sandbox', ' total/N ms');
for (const [checkout, { many, one }] of samples) {
  const m = (pick: (s: Sample) => number, of: Sample[]) => median(of.map(pick));
  const perSandbox = (pick: (s: Sample) => number) => (m(pick, many) - m(pick, one)) / (ITEMS - 1);
  console.log(
    checkout.slice(-28).padEnd(28),
    (m((s) => s.wallMs, many) / 1000).toFixed(2).padStart(6),
    m((s) => s.selfRssMb, many)
      .toFixed(0)
      .padStart(14),
    (m((s) => s.selfCpuMs, many) / 1000).toFixed(2).padStart(13),
    (m((s) => s.totalCpuMs, many) / 1000).toFixed(2).padStart(12),
    perSandbox((s) => s.selfCpuMs)
      .toFixed(1)
      .padStart(18),
    perSandbox((s) => s.totalCpuMs)
      .toFixed(1)
      .padStart(17),
    (m((s) => s.totalCpuMs, many) / ITEMS).toFixed(1).padStart(11),
  );
}
console.log("ms/sandbox: (N items - 1 item) / (N - 1), so Node's start and module loading are left out; total = runner + helper + sh + sleep;");
console.log('total/N: all CPU of the N-item run over N (the start included), as issue 13 counted it.');
