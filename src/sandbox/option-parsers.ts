import { SandboxError } from '../errors.js';

/*
 * Flag values (strings, as typed on a command line) into option values. Each
 * error names the flag and shows the form it expects. (The types are spelled
 * out here: options.ts derives its types from the table that uses these.)
 */

type Limit = number | 'unlimited';

function bad(message: string): never {
  throw new SandboxError('BAD_OPTIONS', message);
}

/** 'SRC:DST' or, where allowed, 'SRC' (same path inside). */
function splitPair(value: string, flag: string, targetOptional: boolean): [string, string | undefined] {
  const colon = value.lastIndexOf(':');
  if (colon <= 0) {
    if (targetOptional && value) return [value, undefined];
    bad(`--${flag} '${value}': expected SRC:DST`);
  }
  const target = value.slice(colon + 1);
  if (!target) bad(`--${flag} '${value}': expected SRC:DST`);
  return [value.slice(0, colon), target];
}

/** --overlay child+parent:/data: stacked lowers are given top first, separated by '+'. */
export function parseOverlay(value: string): { lower: string[]; target: string } {
  const [lowers, target] = splitPair(value, 'overlay', false);
  return { lower: lowers.split('+'), target: target! };
}

export function parseBind(value: string, readonly: boolean): { source: string; target?: string; readonly: boolean } {
  const [source, target] = splitPair(value, readonly ? 'ro-bind' : 'bind', true);
  return { source, readonly, ...(target ? { target } : {}) };
}

export function parseEnvPair(pair: string): [string, string] {
  const eq = pair.indexOf('=');
  if (eq <= 0) bad(`--env '${pair}': expected NAME=VALUE`);
  return [pair.slice(0, eq), pair.slice(eq + 1)];
}

export function parseRlimit(value: string): [string, Limit | [Limit, Limit]] {
  const match = /^([a-z]+)=(\d+|unlimited)(?::(\d+|unlimited))?$/.exec(value);
  if (!match) bad(`--rlimit '${value}': expected NAME=SOFT[:HARD], e.g. nofile=1024 or core=0`);
  const number = (text: string): Limit => (text === 'unlimited' ? 'unlimited' : Number(text));
  const soft = number(match[2]!);
  return [match[1]!, match[3] ? [soft, number(match[3])] : soft];
}

export function parsePids(value: string): number | 'unlimited' {
  if (value === 'unlimited') return value;
  if (!/^[1-9]\d*$/.test(value)) bad(`--pids '${value}': expected a number of processes such as 256, or unlimited`);
  return Number(value);
}

export function parseCpus(value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value) || !(Number(value) > 0)) bad(`--cpus '${value}': expected a number of cores such as 1.5`);
  return Number(value);
}
