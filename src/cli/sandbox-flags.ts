import type { Argv, Options } from 'yargs';
import { type FlagValues, type OptionSpec, SANDBOX_OPTIONS } from '../sandbox/option-table.js';
import type { SandboxOptions } from '../sandbox/options.js';
import { defaultSizes, formatSize } from '../sandbox/size-budget.js';

/*
 * The sandbox flags of every command that starts sandboxes, made from the
 * option table: its flags, their help, and how their values become options.
 */

/** Parsed sandbox flags, as yargs gives them (camelCase). */
export type SandboxFlags = FlagValues;

const SPECS = Object.entries(SANDBOX_OPTIONS as Record<string, OptionSpec>);

/** Help that needs this host's figures. */
function hostFigure(option: string): string {
  if (option === 'tmpfsSize') return ` (default: a quarter of each sandbox's share of half the RAM, ${formatSize(defaultSizes(1).tmpfs)} for one sandbox here)`;
  if (option === 'upperSize')
    return ` (default: half of each sandbox's share of half the RAM, ${formatSize(defaultSizes(1).upper)} for one sandbox here, split by --parallel)`;
  return '';
}

/** Declares every sandbox flag on `yargs`. */
export function sandboxFlags<T>(yargs: Argv<T>): Argv<T> {
  for (const [option, spec] of SPECS) {
    if (!Array.isArray(spec.flags)) continue;
    for (const flag of spec.flags) {
      const settings: Options = {
        type: flag.type,
        group: spec.group ?? 'Process:',
        describe: `${flag.describe}${hostFigure(option)}`,
        ...(flag.alias ? { alias: flag.alias } : {}),
        ...(flag.choices ? { choices: [...flag.choices] } : {}),
        ...(flag.array ? { array: true, nargs: 1 } : {}),
        ...(flag.type !== 'boolean' && !flag.choices ? { requiresArg: true } : {}),
      };
      yargs.option(flag.name, settings);
    }
  }
  return yargs;
}

/** Turns parsed flags into library options. Pure; paths are checked by normalizeOptions. */
export function optionsFromFlags(flags: SandboxFlags): SandboxOptions {
  const options: Record<string, unknown> = {};
  for (const [option, spec] of SPECS) {
    if (!Array.isArray(spec.flags)) continue;
    const camel = spec.flags[0]!.name.replace(/-(\w)/g, (_: string, c: string) => c.toUpperCase());
    const value = spec.fromFlags ? spec.fromFlags(flags) : flags[camel];
    if (value !== undefined) options[option] = value;
  }
  return options as SandboxOptions;
}
