import { readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/** Test runners that understand `--shard=i/N` and a list of files. */
export type TestRunner = 'vitest' | 'jest' | 'playwright';

export interface Detection {
  runner: TestRunner;
  /** How the runner is reached, for the message: e.g. 'npm test' or 'vitest'. */
  via: string;
  /** The runner's own invocation (a script's segment, or the command): env assignments, program, arguments. */
  words: string[];
  /** Where the runner's program is in `words`; its arguments follow. */
  at: number;
  /** `command` (the one detected, `{shard}` substituted) with `extra` arguments reaching the runner's invocation. */
  withArgs(command: readonly string[], extra: readonly string[]): string[];
}

const RUNNERS = new Set<string>(['vitest', 'jest', 'playwright']);
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;
/** Node options whose value is the next word. */
const NODE_VALUE_FLAGS = new Set([
  '-r',
  '--require',
  '--import',
  '--loader',
  '--experimental-loader',
  '-C',
  '--conditions',
  '--env-file',
  '--inspect-port',
  '--title',
]);

/** A runner named by a script path: .bin/jest, jest/bin/jest.js, vitest/vitest.mjs, @playwright/test/cli.js. */
function runnerOfScript(path: string): TestRunner | undefined {
  const name = basename(path).replace(/\.(?:c|m)?js$/, '');
  if (RUNNERS.has(name)) return name as TestRunner;
  const pkg = /node_modules\/(?:(@playwright\/test|playwright)|(jest|jest-cli)|(vitest))\//.exec(path);
  if (!pkg) return undefined;
  return pkg[1] ? 'playwright' : pkg[2] ? 'jest' : 'vitest';
}

/**
 * Where a runner starts in a list of words: `vitest`, `.../jest`,
 * `node [flags] .../jest`, `npx [-y] jest`, `npm exec [--] jest`,
 * `pnpm exec jest`, `pnpm jest`, `yarn jest` (package managers run a bin of
 * that name when no script is called so). Leading `VAR=value` words are skipped.
 */
export function findRunner(words: readonly string[], scripts: Record<string, string> = {}): { runner: TestRunner; at: number } | undefined {
  let i = 0;
  while (i < words.length && ASSIGNMENT.test(words[i]!)) i++;
  const first = words[i];
  if (first === undefined) return undefined;
  const name = basename(first);
  const direct = runnerOfScript(first);
  if (direct && name !== 'node') return { runner: direct, at: i };
  if (name === 'node') {
    let j = i + 1;
    while (j < words.length && words[j]!.startsWith('-')) j += NODE_VALUE_FLAGS.has(words[j]!) ? 2 : 1;
    const runner = words[j] ? runnerOfScript(words[j]!) : undefined;
    return runner ? { runner, at: j } : undefined;
  }
  const skipFlags = (j: number) => {
    while (j < words.length && words[j]!.startsWith('-')) j++;
    return j;
  };
  let j: number | undefined;
  if (name === 'npx') j = skipFlags(i + 1);
  else if ((name === 'npm' || name === 'pnpm' || name === 'yarn') && words[i + 1] === 'exec') j = skipFlags(i + 2);
  else if ((name === 'pnpm' || name === 'yarn') && words[i + 1] && !(words[i + 1]! in scripts)) j = i + 1;
  const runner = j !== undefined && words[j] ? runnerOfScript(words[j]!) : undefined;
  return runner && j !== undefined ? { runner, at: j } : undefined;
}

/** Shell words, quotes honoured (enough for package.json scripts; no expansion). */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  const re = /"((?:\\.|[^"\\])*)"|'([^']*)'|(\\.|[^\s"'\\]+)|(\s+)/gy;
  let current: string | undefined;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[4] !== undefined) {
      if (current !== undefined) words.push(current);
      current = undefined;
    } else current = (current ?? '') + (m[1]?.replace(/\\(.)/g, '$1') ?? m[2] ?? m[3]!.replace(/^\\/, ''));
  }
  if (current !== undefined) words.push(current);
  return words;
}

/** Quotes a word for sh when it needs it. */
export const shellQuote = (word: string): string => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`);

/** A script split at `&&`, `||`, `;` and `|`, keeping the operators: [segment, op, segment, ...]. */
function splitScript(text: string): string[] {
  return text.split(/(\s*(?:&&|\|\||;|\|)\s*)/);
}

function readScripts(cwd: string): Record<string, string> {
  try {
    return (JSON.parse(readFileSync(join(cwd, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts ?? {};
  } catch {
    return {};
  }
}

/** Every node_modules/.bin from the project up, as npm puts them on PATH. */
function binPath(cwd: string): string {
  const dirs: string[] = [];
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    dirs.push(join(dir, 'node_modules', '.bin'));
    if (dirname(dir) === dir) return dirs.join(':');
  }
}

/** Runs `script` in sh as the package manager would: its bins on PATH. */
export function scriptShell(cwd: string, script: string): string[] {
  return ['sh', '-c', `PATH=${shellQuote(binPath(cwd))}:"$PATH"; ${script}`];
}

/**
 * A package script that runs a test runner, alone or as one segment of a
 * compound script (`tsc && jest --ci && echo done`). Exactly one segment
 * may run a runner; else there is no single place for the arguments.
 */
function scriptDetection(command: readonly string[], cwd: string, manager: string, script: string, extra: readonly string[]): Detection | undefined {
  const scripts = readScripts(cwd);
  const text = scripts[script];
  if (!text) return undefined;
  const parts = splitScript(text);
  const found = parts
    .map((part, index) => ({ index, words: index % 2 === 0 ? shellWords(part) : [] }))
    .map((p) => ({ ...p, hit: findRunner(p.words, scripts) }))
    .filter((p) => p.hit);
  if (found.length !== 1) return undefined;
  const { index, words, hit } = found[0]!;
  const via = `${manager} ${command.slice(1, command.length - extra.length).join(' ')}`;
  const userArgs = extra[0] === '--' ? extra.slice(1) : extra;
  if (parts.length === 1) {
    // One command: the package manager passes arguments on (npm only after `--`), and pre/post scripts still run.
    const dashes = manager === 'npm' && !extra.includes('--') ? ['--'] : [];
    return { runner: hit!.runner, via, words: [...words, ...userArgs], at: hit!.at, withArgs: (cmd, more) => [...cmd, ...dashes, ...more] };
  }
  // Compound: the arguments go into the runner's segment only, so the other commands run as written.
  return {
    runner: hit!.runner,
    via: `${via} (the ${hit!.runner} command in its script)`,
    words: [...words, ...userArgs],
    at: hit!.at,
    withArgs: (_cmd, more) => {
      const rewritten = parts.map((part, i) => (i === index ? [...words, ...userArgs, ...more].map(shellQuote).join(' ') : part)).join('');
      return scriptShell(cwd, rewritten);
    },
  };
}

/**
 * Whether `command` runs Vitest, Jest or Playwright: directly (`vitest run`,
 * `node --experimental-vm-modules node_modules/.bin/jest`, `npx jest`,
 * `pnpm exec playwright test`, `yarn vitest`) or through a package script
 * (`npm test`, `npm run e2e`, `pnpm test`, `yarn test`), compound or not.
 */
export function detectTestRunner(command: readonly string[], cwd: string): Detection | undefined {
  const [first = '', second, third] = command;
  const name = basename(first);
  const scripts = name === 'pnpm' || name === 'yarn' ? readScripts(cwd) : {};
  const direct = findRunner(command, scripts);
  if (direct) {
    const words = [...command];
    return {
      ...direct,
      via: command
        .slice(0, direct.at + 1)
        .map((w) => basename(w))
        .join(' '),
      words,
      withArgs: (cmd, more) => [...cmd, ...more],
    };
  }
  if (name !== 'npm' && name !== 'pnpm' && name !== 'yarn') return undefined;
  const run = second === 'run' || second === 'run-script';
  const script = run ? third : second;
  if (!script) return undefined;
  return scriptDetection(command, cwd, name, script, command.slice(run ? 3 : 2));
}

/** Whether the command (or the script it runs) splits its work by itself: `{shard}` or the SANDBOX_SHARD variables. */
export function splitsItself(command: readonly string[], cwd: string): boolean {
  const mentions = (text: string) => text.includes('{shard}') || text.includes('SANDBOX_SHARD') || text.includes('SANDBOX_WORKER_ID');
  if (command.some(mentions)) return true;
  const scripts = readScripts(cwd);
  return command.slice(1, 3).some((word) => word in scripts && mentions(scripts[word]!));
}

/** The command with `--shard=i/N` given to the runner. */
export function withShardFlag(command: readonly string[], detection: Detection, shard: string): string[] {
  return detection.withArgs(command, [`--shard=${shard}`]);
}

/** Replaces `{shard}` (and, in queue mode, `{}`) in the command's arguments. */
export function substitute(command: readonly string[], values: { shard: string; item?: string }): string[] {
  return command.map((arg) => {
    let out = arg.replaceAll('{shard}', values.shard);
    if (values.item !== undefined) out = out.replaceAll('{}', values.item);
    return out;
  });
}
