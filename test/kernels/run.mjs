#!/usr/bin/env node
// npm run test:kernels: the copy-on-write checks of test/kernels/guest.mjs
// under Debian 12's Linux 6.1 (tmpfs holds no user.* xattrs there), booted in
// qemu by ../shared/kmatrix/run-on-kernel over this machine's filesystem, as
// an unprivileged user, with an ext4 scratch disk as $SANDBOX_RUN_HOME.
//   sudo npm run test:kernels [-- --kernel 6.1 --user sandbox-ci]
// run-on-kernel needs root; the checks themselves run as the user.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('../..', import.meta.url));
const { values } = parseArgs({ options: { kernel: { type: 'string', default: '6.1' }, user: { type: 'string', default: 'sandbox-ci' } } });
const runOnKernel = process.env.RUN_ON_KERNEL || fileURLToPath(new URL('../../../shared/kmatrix/run-on-kernel', import.meta.url));

function die(message) {
  console.error(`test:kernels: ${message}`);
  process.exit(2);
}
if (process.getuid() !== 0) die('run-on-kernel boots a kernel in qemu and needs root: run it as root (the checks run as an unprivileged user)');
if (!existsSync(runOnKernel)) die(`${runOnKernel} not found: set RUN_ON_KERNEL to the kernel-matrix runner`);
if (spawnSync('id', [values.user], { stdio: 'ignore' }).status !== 0) {
  console.log(`test:kernels: creating the unprivileged user ${values.user}`);
  execFileSync('useradd', ['--create-home', '--shell', '/bin/sh', values.user], { stdio: 'inherit' });
}
// The guest sees this checkout read-only: it runs the package as built here.
execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
execFileSync(process.execPath, ['helper/build.mjs'], { cwd: root, stdio: 'inherit' });

console.log(`test:kernels: Linux ${values.kernel} as ${values.user} (emulated CPU: minutes, not seconds)`);
const result = spawnSync(
  runOnKernel,
  [
    '--kernel',
    values.kernel,
    '--user',
    values.user,
    '--no-share',
    '--scratch',
    '2G',
    '--mem',
    '2G',
    '--timeout',
    '540',
    '--env',
    'SANDBOX_RUN_HOME=/scratch/home',
    '--',
    process.execPath,
    'test/kernels/guest.mjs',
    '/scratch',
  ],
  { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] },
);
if (result.status === 124) die('timed out after 540 s');
process.exit(result.status ?? 1);
