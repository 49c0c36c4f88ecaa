import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/** Test runners that understand `--shard=i/N`. */
export type TestRunner = 'vitest' | 'jest' | 'playwright';

export interface Detection {
  runner: TestRunner;
  /** How the runner is reached, for the message: e.g. 'npm test' or 'vitest'. */
  via: string;
  /** Where the flag goes: after the whole command, behind `--` for npm. */
  flagPrefix: string[];
}

const RUNNER_IN_SCRIPT = /^(?:\s*[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*(?:npx\s+|pnpm\s+(?:exec\s+)?|yarn\s+)?(vitest|jest|playwright)\b/;

function scriptRunner(cwd: string, script: string): TestRunner | undefined {
  let scripts: Record<string, string> = {};
  try {
    scripts = (JSON.parse(readFileSync(join(cwd, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts ?? {};
  } catch {
    return undefined;
  }
  const text = scripts[script];
  // A compound script (a && b, a; b, a | b) has no single place for the flag.
  if (!text || /&&|\|\||[;|]/.test(text)) return undefined;
  return RUNNER_IN_SCRIPT.exec(text)?.[1] as TestRunner | undefined;
}

/**
 * Whether `command` runs Vitest, Jest or Playwright, directly
 * (`vitest run`, `npx jest`) or through a package script (`npm test`,
 * `npm run e2e`, `pnpm test`, `yarn test`) whose script runs one of them.
 */
export function detectTestRunner(command: readonly string[], cwd: string): Detection | undefined {
  const [first = '', second, third] = command;
  const name = basename(first);
  if (name === 'vitest' || name === 'jest' || name === 'playwright') return { runner: name, via: name, flagPrefix: [] };
  if (name === 'npx' && second && ['vitest', 'jest', 'playwright'].includes(second))
    return { runner: second as TestRunner, via: `npx ${second}`, flagPrefix: [] };
  const script = second === 'run' || second === 'run-script' ? third : second;
  if ((name === 'npm' || name === 'pnpm' || name === 'yarn') && script) {
    const extra = command.slice(second === 'run' || second === 'run-script' ? 3 : 2);
    const runner = scriptRunner(cwd, script);
    if (!runner) return undefined;
    // npm passes arguments to the script only after `--`.
    const needsDashes = name === 'npm' && !extra.includes('--');
    return { runner, via: `${name} ${command.slice(1, second === script ? 2 : 3).join(' ')}`, flagPrefix: needsDashes ? ['--'] : [] };
  }
  return undefined;
}

/** The command with `--shard=i/N` appended where the runner will see it. */
export function withShardFlag(command: readonly string[], detection: Detection, shard: string): string[] {
  return [...command, ...detection.flagPrefix, `--shard=${shard}`];
}

/** Replaces `{shard}` (and, in queue mode, `{}`) in the command's arguments. */
export function substitute(command: readonly string[], values: { shard: string; item?: string }): string[] {
  return command.map((arg) => {
    let out = arg.replaceAll('{shard}', values.shard);
    if (values.item !== undefined) out = out.replaceAll('{}', values.item);
    return out;
  });
}
