import type { Argv } from 'yargs';
import { helperArgs } from '../helper/args.js';
import { normalizeOptions } from '../sandbox/options.js';
import { spawn } from '../sandbox/run.js';
import { toSandboxResult } from '../sandbox/process.js';
import { optionsFromFlags, type SandboxFlags } from './sandbox-flags.js';
import { UsageError } from './usage-error.js';

/** The flags every sandbox-starting command takes. */
export function sandboxFlags<T>(yargs: Argv<T>) {
  return yargs
    .option('overlay', { type: 'string', array: true, nargs: 1, group: 'Filesystem:', describe: 'Copy-on-write view of host dir(s) SRC at DST (stack with child+parent:DST)', requiresArg: true })
    .option('bind', { type: 'string', array: true, nargs: 1, group: 'Filesystem:', describe: 'Read-write bind SRC[:DST] (writes reach the host)', requiresArg: true })
    .option('ro-bind', { type: 'string', array: true, nargs: 1, group: 'Filesystem:', describe: 'Read-only bind SRC[:DST]', requiresArg: true })
    .option('tmpfs', { type: 'string', array: true, nargs: 1, group: 'Filesystem:', describe: 'Fresh tmpfs at DST (/tmp and /dev/shm always are)', requiresArg: true })
    .option('workdir', { type: 'string', choices: ['cow', 'ro', 'rw', 'none'], group: 'Filesystem:', describe: 'How the working directory appears', default: 'cow' })
    .option('cwd', { type: 'string', group: 'Filesystem:', describe: 'Working directory (default: the current one)', requiresArg: true })
    .option('tmpfs-size', { type: 'string', group: 'Limits:', describe: 'Size of /tmp, /dev/shm and --tmpfs mounts (e.g. 512m)', requiresArg: true })
    .option('upper-size', { type: 'string', group: 'Limits:', describe: 'Size of the tmpfs holding copy-on-write writes (e.g. 2g)', requiresArg: true })
    .option('rlimit', { type: 'string', array: true, nargs: 1, group: 'Limits:', describe: 'NAME=SOFT[:HARD]: nofile fsize cpu core nproc as data stack', requiresArg: true })
    .option('network', { type: 'string', choices: ['none', 'host'], group: 'Process:', describe: 'none: private loopback only; host: share the host network', default: 'none' })
    .option('env', { alias: 'e', type: 'string', array: true, nargs: 1, group: 'Process:', describe: 'Set NAME=VALUE', requiresArg: true })
    .option('unset-env', { type: 'string', array: true, nargs: 1, group: 'Process:', describe: 'Remove NAME from the environment', requiresArg: true })
    .option('clean-env', { type: 'boolean', group: 'Process:', describe: 'Start from an empty environment' })
    .option('hostname', { type: 'string', group: 'Process:', describe: 'Hostname inside (default: sandbox)', requiresArg: true })
    .option('uid', { type: 'number', group: 'Process:', describe: 'User id inside (default: yours; 65534 for root)', requiresArg: true })
    .option('gid', { type: 'number', group: 'Process:', describe: 'Group id inside', requiresArg: true });
}

interface RunArgs extends SandboxFlags {
  command?: string[];
  '--'?: string[];
  printHelperArgs?: boolean;
}

/** `sandbox-run [options] -- CMD [ARGS...]`: one sandbox, its output streamed, its exit status ours. */
export async function runCommand(args: RunArgs): Promise<number> {
  const command = [...(args.command ?? []), ...(args['--'] ?? [])].map(String);
  if (command.length === 0) throw new UsageError('no command given: sandbox-run [options] -- CMD [ARGS...]');
  const options = optionsFromFlags(args);
  if (args.printHelperArgs) {
    console.log(JSON.stringify(helperArgs(normalizeOptions(options), command)));
    return 0;
  }
  const subprocess = spawn(command[0]!, command.slice(1), { ...options, stdio: 'inherit' });
  // Ctrl-C reaches the sandbox through the terminal's process group; other
  // signals sent to us alone are forwarded.
  const forward = (signal: NodeJS.Signals) => subprocess.kill(signal);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
  for (const signal of signals) process.on(signal, forward);
  try {
    return toSandboxResult(command, await subprocess).exitCode;
  } finally {
    for (const signal of signals) process.off(signal, forward);
  }
}
