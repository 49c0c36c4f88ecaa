#!/usr/bin/env node
// Builds helper/fuzz/argv-fuzzer.c with libFuzzer, ASan and UBSan, then runs it.
//
//   node helper/fuzz/run.mjs            fuzz for $FUZZ_SECONDS (60) s; the corpus grows in helper/build/fuzz-corpus-argv
//   node helper/fuzz/run.mjs --runs N   N inputs from the seed corpus only (the test suite's bounded run)
//   node helper/fuzz/run.mjs -- FILE    extra arguments go to libFuzzer, e.g. a crash file to replay it
//
// Crashes are written to helper/build/fuzz-artifacts/. Exits with libFuzzer's status.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const helperSource = join(here, '..', 'sandbox-helper.c');
const build = join(here, '..', 'build');
const genDir = join(build, 'fuzz-gen');
const binary = join(build, 'argv-fuzzer');
const artifacts = join(build, 'fuzz-artifacts');
const seeds = join(here, 'corpus-argv');
const clang = process.env.CLANG || 'clang';

const dashes = process.argv.indexOf('--');
const ours = dashes < 0 ? process.argv.slice(2) : process.argv.slice(2, dashes);
const passThrough = dashes < 0 ? [] : process.argv.slice(dashes + 1);
const runsAt = ours.indexOf('--runs');
const runs = runsAt < 0 ? undefined : Number(ours[runsAt + 1]);
if (runs !== undefined && !(Number.isInteger(runs) && runs > 0)) fail('--runs needs a positive integer');

function fail(message) {
  console.error(`fuzz: ${message}`);
  process.exit(1);
}

// Missing tools get one line saying what to install, not a linker error.
if (spawnSync(clang, ['--version'], { stdio: 'ignore' }).status !== 0)
  fail(`${clang} not found: install clang and libFuzzer, e.g. \`apt-get install clang libclang-rt-14-dev\` (or set CLANG)`);
const runtimeDir = spawnSync(clang, ['-print-runtime-dir'], { encoding: 'utf8' }).stdout.trim();
if (!existsSync(runtimeDir) || !readdirSync(runtimeDir).some((f) => f.startsWith('libclang_rt.fuzzer')))
  fail(`libFuzzer runtime not found in '${runtimeDir}': install it, e.g. \`apt-get install libclang-rt-14-dev\``);

mkdirSync(genDir, { recursive: true });
mkdirSync(artifacts, { recursive: true });
const source = readFileSync(helperSource, 'utf8');

// The helper's file-scope statics (column 0, no parenthesis: not functions),
// so the harness resets exactly what the parser can leave behind.
const globals = [];
for (const line of source.split('\n')) {
  if (!line.startsWith('static ') || line.includes('(')) continue;
  // Initializers go first, braced ones ({-1, -1}) whole: their commas separate no declarations.
  const decl = line
    .replace(/\/\*.*?\*\//g, '')
    .replace(/=\s*\{[^}]*\}/g, '')
    .replace(/=[^,;]*/g, '')
    .replace(/\[[^\]]*\]/g, '');
  for (const part of decl.replace(/;.*$/, '').split(',')) globals.push(part.match(/(\w+)\s*$/)[1]);
}
writeFileSync(join(genDir, 'globals.h'), `#define HELPER_GLOBALS(X) ${globals.map((g) => `X(${g})`).join(' ')}\n`);

// Every option name the parser compares against, as a libFuzzer dictionary.
const options = [...new Set(source.match(/"--[a-z-]*"/g))];
writeFileSync(join(genDir, 'argv.dict'), options.map((o) => `${o}\n`).join(''));

const warnings = ['-Wall', '-Wextra', '-Werror', '-Wshadow', '-Wformat=2', '-Wno-format-nonliteral'];
const compile = spawnSync(
  clang,
  [
    '-std=gnu11',
    '-g',
    '-O1',
    '-fsanitize=fuzzer,address,undefined',
    '-fno-sanitize-recover=all',
    ...warnings,
    '-I',
    genDir,
    '-o',
    binary,
    join(here, 'argv-fuzzer.c'),
  ],
  { stdio: 'inherit' },
);
if (compile.status !== 0) fail('building the harness failed');

// A bounded run must not add its finds to the checked-in seeds: libFuzzer
// writes new inputs into the first corpus directory.
const corpus = runs === undefined ? join(build, 'fuzz-corpus-argv') : mkdtempSync(join(tmpdir(), 'sandbox-run-fuzz-'));
mkdirSync(corpus, { recursive: true });
const limit = runs === undefined ? `-max_total_time=${Number(process.env.FUZZ_SECONDS || 60)}` : `-runs=${runs}`;
const args = [
  limit,
  '-max_len=8192', // room for paths near PATH_MAX and for MAX_OPS options
  '-timeout=10',
  '-print_final_stats=1',
  `-dict=${join(genDir, 'argv.dict')}`,
  `-artifact_prefix=${artifacts}/`,
  ...(passThrough.length ? passThrough : [corpus, seeds]),
];
console.error(`fuzz: ${binary} ${args.join(' ')}`);
const run = spawnSync(binary, args, { stdio: 'inherit' });
if (runs !== undefined) rmSync(corpus, { recursive: true, force: true });
process.exit(run.status ?? 1);
