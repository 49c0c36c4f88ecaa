// A bounded run of the coverage-guided harness for the helper's argument
// parser (helper/fuzz/argv-fuzzer.c): any crash, sanitizer report, or
// argument list that validation accepts and a later phase would refuse fails
// the test. `npm run fuzz:helper` is the long run.
//
// clang and libFuzzer are CI tools, not requirements of `npm test`: without
// them this test is skipped, saying so, unless SANDBOX_RUN_REQUIRE_LIBFUZZER=1
// (.ci/run, which installs them) makes their absence a failure.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NODE, ROOT } from './support.js';

const RUNS = 20_000;

/** Why libFuzzer cannot run here (as helper/fuzz/run.mjs looks for it), or undefined. */
function libFuzzerMissing(): string | undefined {
  const clang = process.env.CLANG || 'clang';
  if (spawnSync(clang, ['--version'], { stdio: 'ignore' }).status !== 0) return `${clang} not found (apt-get install clang libclang-rt-14-dev)`;
  const runtime = spawnSync(clang, ['-print-runtime-dir'], { encoding: 'utf8' }).stdout.trim();
  if (!existsSync(runtime) || !readdirSync(runtime).some((file) => file.startsWith('libclang_rt.fuzzer')))
    return `no libFuzzer runtime in '${runtime}' (apt-get install libclang-rt-14-dev)`;
  return undefined;
}

describe('helper argument parser, libFuzzer', () => {
  it(`survives ${RUNS} coverage-guided inputs from the seed corpus`, (ctx) => {
    const missing = libFuzzerMissing();
    if (missing && process.env.SANDBOX_RUN_REQUIRE_LIBFUZZER !== '1') ctx.skip(`skipped: ${missing}; a CI tool, not an npm test requirement`);
    const result = spawnSync(NODE, [join(ROOT, 'helper/fuzz/run.mjs'), '--runs', String(RUNS)], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 50_000,
    });
    // run.mjs says in one line what to install when clang or libFuzzer is missing.
    const tail = result.stderr
      .split('\n')
      .filter((l) => !/^#\d+\s/.test(l))
      .slice(-40)
      .join('\n');
    expect(result.status, tail).toBe(0);
    // libFuzzer ran them all: the test cannot pass on a run that never started.
    expect(result.stderr).toContain(`Done ${RUNS} runs`);
  });
});
