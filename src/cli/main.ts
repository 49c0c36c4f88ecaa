#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ExitCode, SandboxError } from '../errors.js';
import { doctorCommand } from './doctor-command.js';
import { LAYER_COMMANDS, layerCommands } from './layer-commands.js';
import { mergeCommand } from './merge-command.js';
import { OPEN_COMMAND, openCommand } from './open-command.js';
import { pullCommand } from './pull-command.js';
import { runCommand, runnerFlags, sandboxFlags } from './run-command.js';
import { UsageError } from './usage-error.js';

/** Prints a one-line error and gives the exit code that says whose fault it was. */
function fail(error: unknown): number {
  if (error instanceof UsageError) {
    console.error(`sandbox-run: ${error.message}. See sandbox-run --help.`);
    return ExitCode.usage;
  }
  if (error instanceof SandboxError) {
    const hint = error.code === 'USERNS_UNAVAILABLE' && !/doctor/.test(error.message) ? " (run 'sandbox-run doctor')" : '';
    console.error(`sandbox-run: ${error.message}${hint}`);
    return error.code === 'BAD_OPTIONS' ? ExitCode.usage : ExitCode.setup;
  }
  console.error(`sandbox-run: ${error instanceof Error ? error.stack : String(error)}`);
  return ExitCode.setup;
}

/** Words that name a sandbox-run command; anything else is the command to sandbox (use `--` to run a program called e.g. `doctor`). */
const SUBCOMMANDS = new Set<string>(['doctor', 'merge', 'pull', OPEN_COMMAND, ...LAYER_COMMANDS]);

async function main(argv: string[]): Promise<number> {
  let code = 0;
  // Options after the sandboxed command belong to it (`sandbox-run ls -la`),
  // but a subcommand's own options are ours.
  const runsCommand = !SUBCOMMANDS.has(argv.find((arg) => !arg.startsWith('-')) ?? '');
  const cli = yargs(argv)
    .scriptName('sandbox-run')
    .usage(
      '$0 [options] -- CMD [ARGS...]\n\n' +
        'Run CMD in a rootless sandbox: its own processes, loopback network, /tmp and a copy-on-write view of the working directory.',
    )
    .parserConfiguration({ 'populate--': true, 'halt-at-non-option': runsCommand })
    .command(
      'doctor',
      'Check that this machine can run sandboxes and say how to fix it if not',
      (y) =>
        y
          .option('json', { type: 'boolean', describe: 'Print the checks as JSON' })
          .option('cwd', { type: 'string', describe: 'Also check that a sandbox can map every file in DIR (owner and group yours)', requiresArg: true }),
      async (args) => {
        code = await doctorCommand(args);
      },
    )
    .command(
      mergeCommand((exitCode) => {
        code = exitCode;
      }),
    )
    .command(
      layerCommands((exitCode) => {
        code = exitCode;
      }),
    )
    .command(
      openCommand((exitCode) => {
        code = exitCode;
      }),
    )
    .command(
      pullCommand((exitCode) => {
        code = exitCode;
      }),
    )
    .command(
      '$0 [command..]',
      'Run a command in a sandbox',
      (y) =>
        runnerFlags(sandboxFlags(y))
          .positional('command', { type: 'string', array: true, describe: 'The command and its arguments' })
          .option('print-helper-args', { type: 'boolean', describe: "Print the helper's argument list instead of running" })
          .example('$0 -- npm test', 'run the tests in a sandbox')
          .example('$0 --overlay ./fixtures:/data -- ./script.sh', 'a copy-on-write view of ./fixtures at /data')
          .example('$0 --network host --workdir rw -- make', 'share the network, write to the working directory'),
      async (args) => {
        code = await runCommand(args as Parameters<typeof runCommand>[0]);
      },
    )
    .strict()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((message, error) => {
      // yargs' messages can span lines; ours are one line.
      throw error ?? new UsageError(message.replace(/\s*\n\s*/g, ' ').replace(/\.$/, ''));
    });
  await cli.parseAsync();
  return code;
}

main(hideBin(process.argv)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.exitCode = fail(error);
  },
);
