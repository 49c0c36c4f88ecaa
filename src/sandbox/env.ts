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
 *
 * On an image (`imageRoot`: the sandbox's, or the one a process's `root`
 * names) the image's Env (with HOME, USER, LOGNAME of its passwd entry)
 * comes right above the inherited variables and below everything set
 * explicitly: the host's PATH and HOME name host directories, which the
 * image does not have, and `docker run` never inherits them either.
 */
export function sandboxEnv(
  options: Pick<NormalizedOptions, 'env' | 'inheritEnv' | 'passEnv'> & { imageRoot?: { env: Readonly<Record<string, string>> } | undefined },
  more: Readonly<Record<string, string | undefined>> = {},
  exported: Readonly<Record<string, string>> = {},
  inherited: Readonly<Record<string, string | undefined>> = process.env,
): Record<string, string | undefined> {
  // Inherited variables that look like credentials stay outside unless named;
  // variables set explicitly for the sandbox are the caller's choice.
  const base = options.inheritEnv ? inheritedEnv(inherited, options.passEnv) : {};
  const image = options.imageRoot?.env ?? {};
  const env: Record<string, string | undefined> = { ...base, ...image, ...exported, ...options.env, ...more, SANDBOX_RUN: '1' };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete env[key];
  return env;
}
