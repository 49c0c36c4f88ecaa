// Scheduling by measured time, side by side in one run, on a synthetic suite
// of ten 1 s items and one 6 s item named to sort last (zz-long.sh):
//   (a) one machine, --parallel 2: sorted order (no timings) vs longest first;
//   (b) --shard 1/2 and 2/2, --parallel 1 each: every other file (count-based)
//       vs the LPT split of the timings: predicted and measured per machine.
// The durations the runner believes come from a timings file written here
// (as a previous run would have), so both arms schedule from the same data.
//   npm run build && node --import tsx bench/timings.ts
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { lptSplit } from '../src/runner/lpt.js';
import { itemsForMachine } from '../src/runner/shard.js';

const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'dist/cli/main.js');
const scratch = mkdtempSync('/tmp/sandbox-run-bench-timings-');
const env = { SANDBOX_RUN_HOME: join(scratch, 'home'), CI: '1' };

const items = [...Array.from({ length: 10 }, (_, i) => `item-${String(i).padStart(2, '0')}.sh`), 'zz-long.sh'];
const seconds = (item: string) => (item === 'zz-long.sh' ? 6 : 1);
writeFileSync(join(scratch, 'package.json'), '{}');
for (const item of items) writeFileSync(join(scratch, item), `sleep ${seconds(item)}\n`);
const suite = 'each *.sh -- sh {}';
const timings = JSON.stringify({ version: 1, suites: { [suite]: Object.fromEntries(items.map((i) => [i, { ms: seconds(i) * 1000, runs: 1 }])) } });

/** One whole sandbox-run command's wall time; a fresh copy of the timings file each time, so every arm sees the same. */
async function timed(args: string[]): Promise<{ s: number; order: string[] }> {
  writeFileSync(join(scratch, 'timings.json'), timings);
  const json = join(scratch, 'summary.json');
  const t = performance.now();
  const result = await execa('node', [CLI, ...args, '--json', json, '--output', 'quiet', '--', 'sh', '{}'], { cwd: scratch, env, reject: false });
  const s = (performance.now() - t) / 1000;
  if (result.exitCode !== 0) throw new Error(`${args.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
  const order = (JSON.parse(readFileSync(json, 'utf8')) as { results: { label: string }[] }).results.map((r) => r.label);
  return { s, order };
}

const fmt = (s: number) => `${s.toFixed(1)} s`;
try {
  console.log('(a) one machine, --parallel 2, ten 1 s items + one 6 s item sorting last');
  const sorted = await timed(['--each', '*.sh', '--parallel', '2', '--no-timings']);
  const longest = await timed(['--each', '*.sh', '--parallel', '2', '--timings', 'timings.json']);
  console.log(`| order | first item | wall time |\n|---|---|---|`);
  console.log(`| sorted (no timings) | ${sorted.order[0]} | ${fmt(sorted.s)} |`);
  console.log(`| longest first (timings) | ${longest.order[0]} | ${fmt(longest.s)} |`);
  console.log(`longest first / sorted: ${(longest.s / sorted.s).toFixed(2)}x (ideal 8 s vs 11 s: 0.73x)\n`);

  console.log('(b) --shard k/2, --parallel 1 per machine, machines run one after another');
  const weights = items.map((item) => ({ item, ms: seconds(item) * 1000 }));
  const lpt = lptSplit(weights, 2);
  console.log(`| split | machine | items | predicted | measured |\n|---|---|---|---|---|`);
  const rows: { split: string; k: number; predicted: number; measured: number }[] = [];
  for (const k of [1, 2]) {
    const mine = itemsForMachine(items, { index: k, count: 2 });
    const run = await timed(['--each', '*.sh', '--shard', `${k}/2`, '--parallel', '1', '--no-timings']);
    rows.push({ split: 'count-based (every 2nd file)', k, predicted: mine.reduce((a, i) => a + seconds(i), 0), measured: run.s });
    console.log(`| count-based | ${k}/2 | ${mine.length} | ${fmt(rows.at(-1)!.predicted)} | ${fmt(run.s)} |`);
  }
  for (const k of [1, 2]) {
    const run = await timed(['--each', '*.sh', '--shard', `${k}/2`, '--parallel', '1', '--timings', 'timings.json']);
    rows.push({ split: 'timed (LPT)', k, predicted: lpt[k - 1]!.ms / 1000, measured: run.s });
    console.log(`| timed (LPT) | ${k}/2 | ${lpt[k - 1]!.items.length} | ${fmt(lpt[k - 1]!.ms / 1000)} | ${fmt(run.s)} |`);
  }
  const slowest = (split: string) => Math.max(...rows.filter((r) => r.split.startsWith(split)).map((r) => r.measured));
  console.log(`slowest machine: count-based ${fmt(slowest('count'))}, timed ${fmt(slowest('timed'))} (${(slowest('timed') / slowest('count')).toFixed(2)}x)`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
