// Property-based fuzzing of the helper's argument parser through the real,
// sanitized binary: whatever the argument list, the helper answers with one
// of its documented exit codes, never a crash, a hang or a sanitizer report.
//   npm run fuzz            (FUZZ_RUNS=20000 for a long run)
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { HELPERS, tempDir } from './support.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
// Sanitizer reports exit with their own codes, so they cannot pass for ours.
const env = { ASAN_OPTIONS: 'detect_leaks=0:exitcode=86', UBSAN_OPTIONS: 'halt_on_error=1:exitcode=87:print_stacktrace=1' };

describe('helper argument fuzzing', () => {
  const scratch = tempDir('sandbox-run-fuzz-');
  mkdirSync(join(scratch.path, 'dir'));
  afterAll(() => scratch.remove());

  const path = fc.oneof(
    fc.constantFrom(
      '/tmp',
      '/mnt',
      '/tmp/a/b',
      '/proc/x',
      '/',
      '',
      '.',
      '..',
      '/tmp/../etc',
      'relative',
      '/no/such',
      join(scratch.path, 'dir'),
      `${scratch.path}/dir:/usr`,
      '/a,b',
      '/a\\b',
    ),
    fc.string({ maxLength: 40 }),
  );
  const number = fc.oneof(fc.constantFrom('0', '1', '65534', '-1', '4294967295', '99999999999999999999', 'x', ''), fc.string({ maxLength: 8 }));
  const option = fc.oneof(
    fc.tuple(fc.constantFrom('--bind', '--ro-bind', '--overlay', '--bind-inside'), path, path),
    fc.tuple(fc.constant('--overlay-rw'), path, path, path, path),
    fc.tuple(fc.constant('--image-root-rw'), path, path, path),
    fc.tuple(fc.constantFrom('--tmpfs', '--mask', '--chdir', '--unsetenv', '--hostname', '--image-root', '--chroot'), path),
    fc.tuple(fc.constantFrom('--uid', '--gid', '--tmpfs-size', '--upper-size', '--keep-fd', '--info-fd', '--join'), number),
    fc.tuple(fc.constant('--rlimit'), fc.constantFrom('nofile', 'core', 'cpu', 'bogus', ''), number, number),
    fc.tuple(fc.constant('--setenv'), fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 })),
    fc.tuple(fc.constantFrom('--share-net', '--clearenv', '--help', '--', '--bogus', '-x')),
    fc.tuple(fc.string({ maxLength: 20 })),
  );

  it(`answers ${RUNS} random argument lists with a documented exit code`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(option, { maxLength: 8 }), async (options) => {
        const args = [...options.flat(), '--', '/bin/true'];
        const result = await execa(HELPERS.sanitized, args, { reject: false, env, timeout: 10_000, stdin: 'ignore' });
        expect(result.timedOut, args.join(' ')).toBe(false);
        expect([0, 125, 126, 127], `${JSON.stringify(args)}\n${result.stderr}`).toContain(result.exitCode);
        expect(result.stderr).not.toMatch(/AddressSanitizer|runtime error|UndefinedBehaviorSanitizer/);
      }),
      { numRuns: RUNS },
    );
  });
});
