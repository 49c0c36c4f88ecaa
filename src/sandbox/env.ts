import type { NormalizedOptions, SandboxOptions } from './options.js';
import { inheritedEnv, masksFor } from './secrets.js';

/** The environment and the credentials a sandbox gets. */
export type EnvOptions = Pick<NormalizedOptions, 'env' | 'inheritEnv' | 'passEnv' | 'masks'>;

export function normalizeEnv(options: SandboxOptions): EnvOptions {
  return {
    env: { ...options.env },
    inheritEnv: options.inheritEnv ?? true,
    passEnv: [...(options.passEnv ?? [])],
    masks: masksFor(options.mask ?? [], options.allowHome ?? []),
  };
}

/**
 * The environment a sandboxed process starts with. What the caller sets
 * (`env`, `-e`, config `env`) beats what presets and services export
 * (`exported`), and `undefined` there removes a variable whatever its
 * source; per-process variables (`more`) come last. `inherited` is what
 * the sandbox starts from (this process's environment by default).
 */
export function sandboxEnv(
  options: Pick<NormalizedOptions, 'env' | 'inheritEnv' | 'passEnv'>,
  more: Readonly<Record<string, string | undefined>> = {},
  exported: Readonly<Record<string, string>> = {},
  inherited: Readonly<Record<string, string | undefined>> = process.env,
): Record<string, string | undefined> {
  // Inherited variables that look like credentials stay outside unless named;
  // variables set explicitly for the sandbox are the caller's choice.
  const base = options.inheritEnv ? inheritedEnv(inherited, options.passEnv) : {};
  const env: Record<string, string | undefined> = { ...base, ...exported, ...options.env, ...more, SANDBOX_RUN: '1' };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete env[key];
  return env;
}
