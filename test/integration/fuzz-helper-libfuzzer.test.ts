// A bounded run of the coverage-guided harness for the helper's argument
// parser (helper/fuzz/argv-fuzzer.c): any crash, sanitizer report, or
// argument list that validation accepts and a later phase would refuse fails
// the test. `npm run fuzz:helper` is the long run.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NODE, ROOT } from './support.js';

const RUNS = 20_000;

describe('helper argument parser, libFuzzer', () => {
  it(`survives ${RUNS} coverage-guided inputs from the seed corpus`, () => {
    const result = spawnSync(NODE, [join(ROOT, 'helper/fuzz/run.mjs'), '--runs', String(RUNS)], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 50_000,
    });
    // run.mjs says in one line what to install when clang or libFuzzer is missing.
    const tail = result.stderr.split('\n').filter((l) => !/^#\d+\s/.test(l)).slice(-40).join('\n');
    expect(result.status, tail).toBe(0);
    // libFuzzer ran them all: the test cannot pass on a run that never started.
    expect(result.stderr).toContain(`Done ${RUNS} runs`);
  });
});
