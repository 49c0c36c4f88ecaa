import { existsSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { planOpen } from '../kept/open.js';
import { createSandbox } from '../sandbox/create.js';
import { parseEnvPair } from '../sandbox/option-parsers.js';
import { toSandboxResult } from '../sandbox/process.js';
import { stopServices } from '../services/service.js';
import { UsageError } from './usage-error.js';

interface OpenArgs {
  kept: string;
  rw?: boolean;
  services?: boolean;
  env?: string[];
  '--'?: (string | number)[];
}

/** The shell an interactive open drops into: the caller's, if the (read-only) host root has it. */
function shell(): string[] {
  const own = process.env.SHELL;
  return [own && existsSync(own) ? own : '/bin/sh'];
}

/**
 * `sandbox-run open KEPT [-- CMD]`: a sandbox on a kept run's state, its
 * services started (PostgreSQL on the kept data directory), then a shell (on
 * a terminal: a pseudo-terminal of its own, as every sandbox gets) or CMD,
 * with the environment the failed test had.
 */
async function openKept(args: OpenArgs): Promise<number> {
  if (!existsSync(args.kept)) throw new UsageError(`open: '${args.kept}' does not exist (kept runs are in $SANDBOX_RUN_HOME/runs/<run>/<n>)`);
  let plan;
  try {
    plan = planOpen(args.kept, { rw: !!args.rw, services: args.services !== false });
  } catch (error) {
    throw new UsageError(`open: ${(error as Error).message}`);
  }
  const extra = Object.fromEntries((args.env ?? []).map(String).map(parseEnvPair));
  const command = (args['--'] ?? []).map(String);
  try {
    await using sb = await createSandbox({ concurrency: 1, ...plan.options });
    const names = sb.services.map((service) => service.spec.name).join(', ');
    const { label, droppedEnv } = plan.manifest;
    console.error(
      `sandbox-run: opened ${label || `${plan.manifest.layers.length} layer(s)`} from ${args.kept}${names ? ` with ${names} running` : ''}; ` +
        (args.rw ? 'read-write: changes stay in the kept run' : 'copy-on-write: changes are thrown away (--rw keeps them)') +
        (droppedEnv.length ? `; not restored (they look like credentials): ${droppedEnv.join(' ')}, give them with -e NAME=VALUE` : ''),
    );
    const [file, ...rest] = command.length ? command : shell();
    const subprocess = sb.spawn(file!, rest, { stdio: 'inherit', env: { ...plan.env, ...extra } });
    const forward = (signal: NodeJS.Signals) => subprocess.kill(signal);
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
    for (const signal of signals) process.on(signal, forward);
    try {
      return toSandboxResult([file!, ...rest], await subprocess).exitCode;
    } finally {
      for (const signal of signals) process.off(signal, forward);
      // Disposing kills the pid namespace at once; with --rw the kept state must
      // outlive this open, so the services shut down cleanly first.
      if (args.rw) await stopServices(sb.services);
    }
  } finally {
    plan.cleanup();
  }
}

export const OPEN_COMMAND = 'open';

// biome-ignore lint/suspicious/noExplicitAny: listed with the layer commands, whose flags differ
export function openCommand(done: (code: number) => void): CommandModule<object, any> {
  return {
    command: 'open <kept>',
    describe: 'Start a sandbox on a kept failed run (its layers, services and environment) and run a shell or CMD in it',
    builder: (y: Argv) =>
      y
        .usage('$0 open KEPT [--rw] [-- CMD [ARGS...]]')
        .positional('kept', { type: 'string', demandOption: true, describe: 'A kept run directory, as the summary prints it' })
        .option('rw', { type: 'boolean', describe: 'Write to the kept state itself (default: copy-on-write over it, thrown away)' })
        .option('services', { type: 'boolean', default: true, describe: 'Start its services (--no-services: only the files)' })
        .option('env', {
          alias: 'e',
          type: 'string',
          array: true,
          nargs: 1,
          requiresArg: true,
          describe: 'Set NAME=VALUE (e.g. a credential the kept run left out)',
        })
        .example('$0 open ~/.cache/sandbox-run/runs/2026-…-4242/3', 'a shell in the failed sandbox, PostgreSQL running')
        .example("$0 open KEPT -- psql -c 'select * from accounts'", 'one query against the kept database'),
    handler: async (args) => {
      done(await openKept(args as unknown as OpenArgs));
    },
  };
}
